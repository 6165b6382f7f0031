"""data.decode=cuda without a GPU: nvJPEG's batched decode waits for the caller's stream, and a JPEG it
rejects is decoded on the CPU, named in the log (issue 23, break 2). The decoder and the stream are
mocked; the rest is the code a GPU runs."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torchvision.io
from PIL import Image

from ssrl.data import folders
from ssrl.data.folders import FolderCrops, FolderImages, batched_resized_crops, decode_batch

REAL_DECODE = torchvision.io.decode_jpeg


def jpeg(path, mode: str = "RGB", seed: int = 0):
    pixels = np.random.default_rng(seed).integers(0, 255, (15, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).convert(mode).save(path, quality=95)
    return str(path)


def test_the_batched_device_decode_waits_for_the_callers_stream(tmp_path, monkeypatch):
    events = []

    class Stream:
        def synchronize(self):
            events.append("wait")

    def decode(data, mode, device):
        events.append("decode")
        return REAL_DECODE(data, mode=mode)

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: Stream())
    monkeypatch.setattr(torchvision.io, "decode_jpeg", decode)
    paths = [jpeg(tmp_path / f"{i}.jpg", seed=i) for i in range(2)]
    files = [torchvision.io.read_file(p) for p in paths]
    images = decode_batch(files, paths, 3, torch.device("cuda"))
    assert events == ["wait", "decode"]
    assert all(torch.equal(image, REAL_DECODE(f)) for image, f in zip(images, files, strict=True))


def test_a_jpeg_the_device_rejects_is_decoded_on_the_cpu_and_named_once(tmp_path, monkeypatch, caplog, config):
    """nvJPEG rejects CMYK JPEGs (ImageNet holds a few); the CPU's decoder reads them."""
    paths = [jpeg(tmp_path / "rgb.jpg"), jpeg(tmp_path / "cmyk.jpg", "CMYK", seed=1)]
    calls = []

    cmyk = torchvision.io.read_file(paths[1])

    def nvjpeg(device, data, mode):  # rejects a batch or a file with the CMYK JPEG in it
        batch = data if isinstance(data, list) else [data]
        calls.append(len(batch))
        if any(torch.equal(f, cmyk) for f in batch):
            raise RuntimeError("nvjpegDecodeBatchedPhaseOne failed")
        decoded = [REAL_DECODE(f, mode=mode) for f in batch]
        return decoded if isinstance(data, list) else decoded[0]

    monkeypatch.setattr(folders, "decode_on", nvjpeg)  # the device's decoder; the CPU's is torchvision's
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    crops = FolderCrops(FolderImages([(p, 0) for p in paths], ["a"], 8, 10, 3), recipe, seed=0, decode="cuda")
    finish = crops.finish(torch.device("cpu"))
    on_cpu = [folders.decode_tensor(torchvision.io.read_file(p), p, 3) for p in paths]  # data.decode=cpu's
    with caplog.at_level(logging.WARNING, logger="ssrl"):
        for epoch in range(2):
            (a, b), labels = finish(crops.collate([crops[(epoch, 0)], crops[(epoch, 1)]]))
            boxes = torch.tensor([crops.boxes(epoch, i, 20, 15) for i in (0, 1)])
            cpu = batched_resized_crops(on_cpu, boxes, 8)
            assert torch.equal(a, cpu[0]) and torch.equal(b, cpu[1])  # the images data.decode=cpu decodes
    assert calls == [2, 1, 1, 1]  # the batch fails, then file by file; the next epoch sends cmyk.jpg to the CPU
    assert [r.getMessage() for r in caplog.records if "cmyk.jpg" in r.getMessage()] == [
        f"ssrl: decoding on cpu rejects {paths[1]} (nvjpegDecodeBatchedPhaseOne failed); decoded on the CPU instead"
    ]
