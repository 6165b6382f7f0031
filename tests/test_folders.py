"""Image folders: training crops drawn from the whole image as torchvision's RandomResizedCrop draws
them, the standard evaluation transform, the three decode paths agreeing, a corrupt file named, every
split's classes indexed as train/'s (issue 12, case 7), and grayscale folders kept grayscale (case 8)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.stats import ks_2samp
from torchvision.transforms import v2

from ssrl.data import folders
from ssrl.data.folders import FolderCrops, FolderImages, batched_resized_crops, imagefolder, resized_crop
from ssrl.errors import ConfigError
from tests.conftest import TINY, ssrl_train
from tests.folders import FOLDER_ARGS, image_folder, without_data

DECODERS = ("pil", "cpu", "cuda")  # "cuda" runs its batch decode on the CPU here: the same code path


def crops_of(folder: FolderImages, recipe, decode: str, keys: list[tuple[int, int]]):
    """The training crops of ``keys`` through the ``decode`` path, as the loader makes them."""
    crops = FolderCrops(folder, recipe, seed=0, decode=decode)
    batch = crops.collate([crops[k] for k in keys])
    return crops.finish(torch.device("cpu"))(batch)[0]


def one_image(tmp_path, pixels: np.ndarray, name: str = "x.png") -> FolderImages:
    path = tmp_path / name
    Image.fromarray(pixels).save(path, quality=98)
    return FolderImages([(str(path), 0)], ["a"], size=32, resize=36, channels=3)


def test_crop_boxes_are_drawn_from_the_whole_image_as_torchvision_draws_them(config):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    width, height, n = 500, 375, 20000
    crops = FolderCrops(FolderImages([], [], 224, 256, 3), recipe, seed=0, decode="pil")
    ours = torch.tensor([box for i in range(n // 2) for box in crops.boxes(0, i, width, height)], dtype=torch.float)
    torch.manual_seed(0)
    image = torch.zeros(3, height, width)
    theirs = torch.tensor(
        [v2.RandomResizedCrop.get_params(image, list(recipe.crop_scale), list(recipe.crop_ratio)) for _ in range(n)],
        dtype=torch.float,
    )  # (top, left, height, width)
    area = ours[:, 2] * ours[:, 3] / (width * height), theirs[:, 2] * theirs[:, 3] / (width * height)
    ratio = ours[:, 2] / ours[:, 3], theirs[:, 3] / theirs[:, 2]
    assert ks_2samp(area[0].numpy(), area[1].numpy()).statistic < 0.02
    assert ks_2samp(ratio[0].numpy(), ratio[1].numpy()).statistic < 0.03
    assert (ours[:, 0] >= 0).all() and (ours[:, 0] + ours[:, 2] <= width).all()
    assert (ours[:, 1] >= 0).all() and (ours[:, 1] + ours[:, 3] <= height).all()
    # from the whole image: boxes reach every edge, and their centres spread over it as torchvision's do
    assert ours[:, 0].min() == 0 and (ours[:, 0] + ours[:, 2]).max() == width
    centre = (ours[:, 0] + ours[:, 2] / 2) / width, (theirs[:, 1] + theirs[:, 3] / 2) / width
    assert ks_2samp(centre[0].numpy(), centre[1].numpy()).statistic < 0.03
    # a new epoch, a new draw; the same key, the same draw
    assert crops.boxes(1, 0, width, height) != crops.boxes(0, 0, width, height)
    assert crops.boxes(0, 0, width, height) == crops.boxes(0, 0, width, height)


@pytest.mark.parametrize("decode", DECODERS)
def test_training_crops_see_the_margins_an_evaluation_crop_cuts_off(tmp_path, config, decode):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    pixels = np.zeros((375, 500, 3), dtype=np.uint8)
    pixels[:, :40, 2] = 255  # a blue band at the left edge, outside the centre crop
    folder = one_image(tmp_path, pixels, "x.jpg" if decode != "pil" else "x.png")
    assert folder[0][0][2].max() < 60  # the evaluation crop does not reach it
    a, b = crops_of(folder, recipe, decode, [(epoch, 0) for epoch in range(64)])
    assert a.shape == b.shape == (64, 3, 32, 32) and a.dtype == torch.uint8
    blue = torch.cat([a, b])[:, 2].amax(dim=(1, 2)) > 200
    assert 0.05 < blue.float().mean() < 0.9


def test_decode_paths_make_the_same_crops(tmp_path, config):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (15, 20, 3)), np.ones((25, 25, 1))).astype(np.uint8)  # 375 x 500
    folder = one_image(tmp_path, smooth, "x.jpg")
    keys = [(epoch, 0) for epoch in range(8)]
    pil, cpu, cuda = (crops_of(folder, recipe, decode, keys) for decode in DECODERS)
    for ours in (pil, cuda):  # PIL's decode and resize, roi_align's box filter: a little different from cpu's
        for view, theirs in zip(ours, cpu, strict=True):
            assert (view.float() - theirs.float()).abs().mean() < 6


def test_batched_crops_reach_each_images_own_edges():
    """Two images of different sizes in one batch: boxes that end at the smaller image's right and bottom
    edges (downscaled and upscaled) read that image's edge pixels, not the padding beyond them; each view
    agrees with resize's antialiased crop of its box."""
    small = torch.full((3, 40, 60), 200, dtype=torch.uint8)
    large = torch.full((3, 80, 100), 100, dtype=torch.uint8)
    large[:, :, 50:] = 30
    boxes = torch.tensor([[[0, 0, 60, 40], [50, 30, 10, 10]], [[10, 20, 80, 50], [0, 0, 100, 80]]])
    a, b = batched_resized_crops([small, large], boxes, 16)
    assert a.shape == b.shape == (2, 3, 16, 16) and a.dtype == torch.uint8
    assert (a[0] == 200).all() and (b[0] == 200).all()  # the small image's edges, not the pad
    noise = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    same = batched_resized_crops([noise, large], torch.tensor([[[20, 30, 16, 16]] * 2, [[0, 0, 16, 16]] * 2]), 16)
    assert torch.equal(same[0][0], noise[:, 30:46, 20:36])  # a box of the output's size: its pixels exactly
    for views, k in ((a, 1), (b, 1)):
        box = tuple(boxes[k, 0 if views is a else 1].tolist())
        assert (views[k].float() - resized_crop(large, box, 16).float()).abs().mean() < 2  # filters differ at the step


def test_the_cuda_path_draws_boxes_in_the_workers_and_crops_a_batch_in_one_call(tmp_path, config, monkeypatch):
    """data.decode=cuda: a worker's item holds the file's bytes and its two boxes, drawn from the size in
    the JPEG's header as the other paths draw them from the decoded image; the batch is cropped and
    resized by one roi_align, not one resize per image."""
    import torchvision.ops

    recipe = config("data=imagefolder", "data.root=/unused").data.views
    rng = np.random.default_rng(2)
    paths = []
    for k, (h, w) in enumerate([(37, 50), (50, 31), (20, 20)]):
        paths.append(str(tmp_path / f"{k}.jpg"))
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    folder = FolderImages([(p, 0) for p in paths], ["a"], size=8, resize=10, channels=3)
    crops = FolderCrops(folder, recipe, seed=0, decode="cuda")
    items = [crops[(3, i)] for i in range(3)]
    for (data, boxes), _, (epoch, i) in items:
        image = folders.decode_tensor(data, paths[i], 3)
        assert boxes.tolist() == [list(box) for box in crops.boxes(epoch, i, image.shape[2], image.shape[1])]
    calls, real = [], torchvision.ops.roi_align
    monkeypatch.setattr(torchvision.ops, "roi_align", lambda *a, **k: calls.append(len(a[1])) or real(*a, **k))
    (a, b), _ = crops.finish(torch.device("cpu"))(crops.collate(items))
    assert a.shape == b.shape == (3, 3, 8, 8) and calls == [6]


def test_evaluation_transform_resizes_the_short_side_then_crops_the_centre(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (375, 500, 3), dtype=np.uint8)
    folder = one_image(tmp_path, pixels)
    folder = FolderImages(folder.samples, ["a"], size=224, resize=256, channels=3)
    image, label = folder[0]
    standard = v2.Compose([v2.Resize(256), v2.CenterCrop(224), v2.PILToTensor()])(Image.open(folder.samples[0][0]))
    assert image.shape == (3, 224, 224) and label == 0
    assert torch.equal(image, standard)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize("content", [b"not an image at all", b"\xff\xd8\xff" + b"a broken JPEG" * 8])
def test_a_corrupt_file_is_named(tmp_path, config, decode, content):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    good = one_image(tmp_path, np.zeros((20, 30, 3), dtype=np.uint8), "good.jpg")
    (tmp_path / "bad.jpg").write_bytes(content)
    folder = FolderImages([*good.samples, (str(tmp_path / "bad.jpg"), 0)], ["a"], 8, 10, 3)
    with pytest.raises(ConfigError, match=r"cannot decode image .*bad\.jpg"):
        crops_of(folder, recipe, decode, [(0, 0), (0, 1)])
    with pytest.raises(ConfigError, match=r"cannot decode image .*bad\.jpg"):
        folder[1]


def test_a_corrupt_file_read_by_workers_is_one_line(tmp_path, monkeypatch, capsys):
    """Issue 25, case 14: with data.num_workers=2 the worker's error comes back with its whole traceback
    as the message (~45 lines, the file named on the last); the run says it in one line naming the file,
    on stderr, in train.log and in summary.json's error."""
    import sys

    from ssrl import train as ssrl_train_main

    root = image_folder(tmp_path / "images")
    bad = root / "train" / "b" / "3.jpg"
    bad.write_bytes(b"not an image at all")
    args = [*without_data(TINY), *FOLDER_ARGS, f"data.root={root}", "data.num_workers=2", "hydra.run.dir=R"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *args])
    with pytest.raises(SystemExit) as exit_info:
        ssrl_train_main.main()
    assert exit_info.value.code == 2
    error = f"data.root: cannot decode image {bad} (cannot identify image file '{bad}'); remove or replace it"
    assert capsys.readouterr().err.splitlines()[-1] == f"ssrl-train: R failed: {error}"
    assert json.loads((tmp_path / "R" / "summary.json").read_text())["error"] == error
    last_logged = (tmp_path / "R" / "train.log").read_text().splitlines()[-1]
    assert last_logged.endswith(f"[ssrl][ERROR] ssrl-train: R failed: {error}")


def test_every_split_is_indexed_by_the_training_classes(tmp_path, config):
    root = image_folder(tmp_path / "ok", train=("a", "b", "c"), val=("a", "c"), per_class=4)
    splits = imagefolder(config(*FOLDER_ARGS, f"data.root={root}", tiny=False).data)
    assert splits.num_classes == 3
    assert sorted(set(splits.test.targets)) == [0, 2]  # val/c is class 2, as in train/, not 1
    assert all(("/a/" in p) == (y == 0) and ("/c/" in p) == (y == 2) for p, y in splits.test.samples)

    extra = image_folder(tmp_path / "extra", train=("a", "b"), val=("a", "d"), per_class=4)
    with pytest.raises(ConfigError, match=r"class folders that train/ lacks: d"):
        imagefolder(config(*FOLDER_ARGS, f"data.root={extra}", tiny=False).data)


@pytest.mark.slow
def test_a_val_folder_missing_a_class_is_scored_right(tmp_path):
    root = image_folder(tmp_path / "images", train=("a", "b", "c"), val=("a", "c"))
    args = [*without_data(TINY), *FOLDER_ARGS, f"data.root={root}", "trainer.limit_train_batches=1"]
    ssrl_train(*args, "hydra.run.dir=run", cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert summary["probe_acc"] == 1.0 and summary["probe_acc_init"] == 1.0  # separable colours, right labels


@pytest.mark.slow
def test_a_grayscale_folder_trains_with_one_channel(tmp_path, config):
    root = image_folder(tmp_path / "images", grayscale=True)
    args = [*FOLDER_ARGS, f"data.root={root}", "data.channels=1", "data.views.mean=[0.5]", "data.views.std=[0.25]"]
    from ssrl.data.module import SSLDataModule

    data = SSLDataModule(config(*args, tiny=False).data, seed=0)
    (a, b), _ = next(iter(data.train_dataloader()))
    images, _ = next(iter(data.val_dataloader()))
    assert a.shape[1:] == b.shape[1:] == images.shape[1:] == (1, 8, 8)

    ssrl_train(*without_data(TINY), *args, "trainer.limit_train_batches=1", "hydra.run.dir=run", cwd=tmp_path)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["config"]["backbone"]["in_channels"] == 1
    assert summary["probe_acc"] == 1.0


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    ("pixels", "name", "grey"),
    [
        (np.full((12, 16), 40000, dtype=np.uint16), "x.png", 156),  # mode I;16: round(40000 * 255 / 65535)
        (np.full((12, 16), 0.25, dtype=np.float32), "x.tif", 64),  # mode F in [0, 1]: round(0.25 * 255)
    ],
)
def test_high_bit_depth_images_are_scaled_to_8_bit_on_every_path(tmp_path, config, decode, pixels, name, grey):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    folder = one_image(tmp_path, pixels, name)
    assert Image.open(folder.samples[0][0]).mode in ("I;16", "F")
    evaluation, _ = folder[0]
    a, b = crops_of(folder, recipe, decode, [(0, 0)])
    for image in (evaluation, a[0], b[0]):
        assert image.dtype == torch.uint8 and image.shape[0] == 3
        assert torch.equal(image, torch.full_like(image, grey))  # not 255 (white) nor 0 (black)


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    ("pixels", "mode"), [(np.full((12, 16), 2.0, dtype=np.float32), "F"), (np.full((12, 16), 7, dtype=np.int32), "I")]
)
def test_high_bit_depth_images_without_a_known_range_are_refused(tmp_path, config, decode, pixels, mode):
    recipe = config("data=imagefolder", "data.root=/unused").data.views
    folder = one_image(tmp_path, pixels, "odd.tif")
    with pytest.raises(ConfigError, match=rf"image .*odd\.tif has mode {mode} with values in \["):
        crops_of(folder, recipe, decode, [(0, 0)])
    with pytest.raises(ConfigError, match=rf"odd\.tif has mode {mode}"):
        folder[0]
