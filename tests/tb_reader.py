"""Reading a log folder back through TensorBoard's own data layer, as its dashboards do."""

from __future__ import annotations

from pathlib import Path

from tensorboard import context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups


def read_hparams(logdir: Path) -> tuple[api_pb2.Experiment, list[api_pb2.SessionGroup]]:
    """The HParams plugin's experiment (as its GetExperiment handler sorts it) and session groups."""
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    ctx = context.RequestContext()
    experiment = get_experiment.Handler(ctx, backend, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE],
        start_index=0,
        slice_size=1000,
    )
    groups = list_session_groups.Handler(ctx, backend, "", request).run().session_groups
    return experiment, list(groups)
