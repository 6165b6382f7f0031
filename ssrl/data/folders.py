"""Image folders (ImageNet-100, TinyImageNet): data.root/{train,val}/<class>/<image>, decoded on the fly.

Views follow the standard protocol. Training: each view is a random-resized crop of the *whole* image
(box drawn as torchvision's RandomResizedCrop, from (seed, epoch, sample index)), resized to
data.image_size while decoding; flip, colour and the rest follow batched on the device. Evaluation:
resize the short side to data.decode_size, centre crop data.image_size.

Three ways to decode the training images (``data.decode``):
  pil    PIL in the DataLoader workers (any format PIL reads); crops resized by PIL (antialiased)
  cpu    torchvision.io.decode_jpeg (libjpeg-turbo) in the workers; other formats by decode_image
  cuda   the workers read the files and draw the crop boxes from each JPEG's header; each batch is
         decoded on the device at once (nvJPEG), then cropped and resized there in one call
         (``batched_resized_crops``); a file that is not a JPEG is decoded in its worker instead, and one
         that nvJPEG rejects (a CMYK JPEG) on the CPU, named in the log (``decode_batch``)
  auto   cuda when the run is on a CUDA device, else pil
Every split's class indices come from train/'s class list; a corrupt file fails naming the file.
High-bit-depth images become 8 bit on every path (``eight_bit``): 16-bit pixels scaled by 255 / 65535,
float pixels in [0, 1] by 255; other float ranges and 32-bit integer pixels are refused, naming the file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssrl.data.splits import Splits, split_off_val
from ssrl.data.views import pixel_crop_boxes, seed_of
from ssrl.errors import ConfigError

log = logging.getLogger("ssrl")
JPEG_MAGIC = b"\xff\xd8\xff"
#: Formats torchvision decodes from bytes (their first bytes); the rest are decoded by PIL.
TORCHVISION_MAGIC = (JPEG_MAGIC, b"\x89PNG", b"GIF8", b"RIFF")
#: Pillow's 16-bit modes: 0..65535 scaled to 0..255.
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def list_classes(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def list_images(folder: Path, classes: list[str]) -> list[tuple[str, int]]:
    """(path, class index) of every image file under folder/<class>/, indices from ``classes``; the
    class folders ``folder`` has that ``classes`` lacks are one error naming them."""
    from torchvision.datasets.folder import IMG_EXTENSIONS

    present = list_classes(folder)
    unknown = sorted(set(present) - set(classes))
    if unknown:
        raise ConfigError(
            f"data.root: {folder} has class folders that train/ lacks: {', '.join(unknown)}; "
            "every class of val/ must also be a class of train/ (their indices come from train/)"
        )
    samples = []
    for name in present:
        files = sorted(p for p in (folder / name).rglob("*") if p.is_file() and p.suffix.lower() in IMG_EXTENSIONS)
        samples += [(str(p), classes.index(name)) for p in files]
    if not samples:
        raise ConfigError(f"data.root: {folder} has no readable images (extensions: {', '.join(IMG_EXTENSIONS)})")
    return samples


def _decode_error(path: str, exc: Exception) -> ConfigError:
    return ConfigError(f"data.root: cannot decode image {path} ({exc}); remove or replace it")


def eight_bit(image: Any, path: str) -> Any:
    """A PIL image of 16-bit (modes I;16*) or float (mode F) pixels as 8-bit grayscale (mode L): 16-bit
    values x -> round(x * 255 / 65535), floats in [0, 1] -> round(x * 255); other images unchanged.
    PIL's own conversion clips these to 255 (white) or 0..1 (black). Raises ConfigError naming the file
    for mode I (32-bit integers: no known full range) and for float pixels outside [0, 1] or not finite."""
    from PIL import Image

    if image.mode not in (*SIXTEEN_BIT, "I", "F"):
        return image
    pixels = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode in SIXTEEN_BIT else 1.0
    if image.mode == "I" or not (np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= top):
        raise ConfigError(
            f"data.root: image {path} has mode {image.mode} with values in [{pixels.min():g}, {pixels.max():g}]; "
            "ssrl reads 8-bit, 16-bit (0..65535) and float (0..1) pixels: convert it to 8 or 16 bit"
        )
    return Image.fromarray(np.rint(pixels * (255 / top)).astype(np.uint8), "L")


def open_pil(path: str, channels: int) -> Any:
    """The whole image as PIL, in RGB (channels=3) or grayscale (channels=1); high bit depths by ``eight_bit``."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except Exception as exc:  # a corrupt or unreadable file: name it, never train on garbage
        raise _decode_error(path, exc) from exc
    with image:
        return eight_bit(image, path).convert("RGB" if channels == 3 else "L")


def decode_tensor(data: Tensor, path: str, channels: int, device: torch.device | str = "cpu") -> Tensor:
    """Encoded bytes -> uint8 (channels, H, W): decode_jpeg for JPEGs (on ``device``), decode_image
    (on the CPU) for PNG, GIF and WebP (16-bit PNGs scaled as ``eight_bit`` scales them), ``open_pil``
    for the formats torchvision does not read (TIFF, BMP, ...)."""
    from torchvision.io import ImageReadMode, decode_image, decode_jpeg
    from torchvision.transforms.v2 import functional as TF

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    head = bytes(data[:4].tolist())
    if not head.startswith(TORCHVISION_MAGIC):
        return TF.pil_to_tensor(open_pil(path, channels)).to(device)
    try:
        if head.startswith(JPEG_MAGIC):
            return decode_jpeg(data, mode=mode, device=device)
        image = decode_image(data, mode=mode)
    except Exception as exc:
        raise _decode_error(path, exc) from exc
    if image.dtype == torch.uint16:
        image = (image.float() * (255 / 65535)).round().to(torch.uint8)
    return image.to(device)


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file from its header alone (PIL reads no pixels for it)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise _decode_error(path, exc) from exc


def resized_crop(image: Tensor, box: tuple[int, int, int, int], size: int) -> Tensor:
    """uint8 (C, H, W) -> the box (left, top, width, height) resized to (C, size, size), antialiased."""
    from torchvision.transforms.v2 import functional as TF

    left, top, width, height = box
    crop = image[:, top : top + height, left : left + width]
    if crop.device.type == "cpu":  # torch's fast uint8 antialiased resize wants channels-last pixels
        crop = crop.permute(1, 2, 0).contiguous().permute(2, 0, 1)
    return TF.resize(crop, [size, size], antialias=True).contiguous()


def batched_resized_crops(images: list[Tensor], boxes: Tensor, size: int) -> tuple[Tensor, ...]:
    """uint8 images (C, H_i, W_i) on one device and boxes (N, V, 4) (left, top, width, height, pixels)
    -> V views, uint8 (N, C, size, size) each: every box resized in one torchvision ``roi_align`` over the
    images padded to a common size, the pad's first row and column copying each image's edge (a
    bilinear sample at a box's far edge reaches the pixel beyond it). roi_align with an adaptive sampling
    grid (ceil(box side / size) samples per output pixel side) averages bilinear samples over each output
    pixel: an antialiased downscale, a bilinear upscale. Against ``resized_crop`` (torchvision's
    triangle-filter antialias) it differs on average by 0.3 grey levels for 224-pixel crops of 500 x 375
    images and by 3.5 for 32-pixel ones (tests/test_folders.py).
    A few multi-tensor copies and one roi_align per batch, whatever N."""
    from torchvision.ops import roi_align

    n, views, channels = len(images), boxes.shape[1], images[0].shape[0]
    sizes = [(image.shape[1], image.shape[2]) for image in images]
    pad = images[0].new_empty(n, channels, max(h for h, _ in sizes) + 1, max(w for _, w in sizes) + 1)
    torch._foreach_copy_([pad[k, :, :h, :w] for k, (h, w) in enumerate(sizes)], images)
    torch._foreach_copy_(
        [pad[k, :, :h, w] for k, (h, w) in enumerate(sizes)], [pad[k, :, :h, w - 1] for k, (h, w) in enumerate(sizes)]
    )
    torch._foreach_copy_(
        [pad[k, :, h, : w + 1] for k, (h, w) in enumerate(sizes)],
        [pad[k, :, h - 1, : w + 1] for k, (h, w) in enumerate(sizes)],
    )
    box = boxes.to(device=pad.device, dtype=torch.float32).reshape(-1, 4)
    index = torch.arange(n, device=pad.device, dtype=torch.float32).repeat_interleave(views)
    rois = torch.stack([index, box[:, 0], box[:, 1], box[:, 0] + box[:, 2], box[:, 1] + box[:, 3]], dim=1)
    out = roi_align(pad.float(), rois, (size, size), spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return out.round_().clamp_(0, 255).to(torch.uint8).view(n, views, channels, size, size).unbind(1)


class FolderImages(Dataset):
    """The images of one split, item i -> (uint8 (C, size, size), class index) for evaluation: the short
    side resized to ``resize``, then the centre ``size`` x ``size`` crop."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str], size: int, resize: int, channels: int):
        self.samples, self.classes = samples, classes
        self.size, self.resize, self.channels = size, resize, channels

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def subset(self, index: np.ndarray) -> FolderImages:
        return FolderImages([self.samples[i] for i in index], self.classes, self.size, self.resize, self.channels)

    def whole(self, i: int) -> Any:
        """Image i whole, as PIL (what the per-sample pipeline crops from)."""
        return open_pil(self.samples[i][0], self.channels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from torchvision.transforms.v2 import functional as TF

        image = TF.center_crop(TF.resize(self.whole(i), self.resize, antialias=True), self.size)
        return TF.pil_to_tensor(image), self.samples[i][1]


class FolderCrops(Dataset):
    """Training items of a FolderImages split, keyed (epoch, i): two random-resized crops of the whole
    image i, drawn from (seed, epoch, i), uint8 (C, size, size) each. With decode="cuda" an item is the
    file's bytes instead (or the decoded image, for a file that is not a JPEG) with its two boxes, drawn
    from the size in the file's header; ``finish`` then decodes,
    crops and resizes a whole batch on the device."""

    def __init__(self, folder: FolderImages, recipe: Any, seed: int, decode: str) -> None:
        self.folder, self.seed, self.decode = folder, seed, decode
        self.scale, self.ratio = tuple(recipe.crop_scale), tuple(recipe.crop_ratio)
        self.rejected: set[str] = set()  # the files decode="cuda" decodes on the CPU (decode_batch)

    def __len__(self) -> int:
        return len(self.folder)

    def boxes(self, epoch: int, i: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
        g = torch.Generator().manual_seed(seed_of(self.seed, 2, epoch, i))
        return pixel_crop_boxes(width, height, 2, self.scale, self.ratio, g)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, int, tuple[int, int]]:
        epoch, i = key
        path, label = self.folder.samples[i]
        size, channels = self.folder.size, self.folder.channels
        if self.decode == "pil":
            from PIL import Image
            from torchvision.transforms.v2 import functional as TF

            image = open_pil(path, channels)
            crops = [
                TF.pil_to_tensor(image.resize((size, size), Image.BILINEAR, box=(x, y, x + w, y + h)))
                for x, y, w, h in self.boxes(epoch, i, *image.size)
            ]
            return (crops[0], crops[1]), label, key
        from torchvision.io import read_file

        data = read_file(path)
        if self.decode == "cuda" and bytes(data[:3].tolist()) == JPEG_MAGIC:
            return (data, torch.tensor(self.boxes(epoch, i, *image_size(path)))), label, key
        image = decode_tensor(data, path, channels)
        if self.decode == "cuda":
            return (image, torch.tensor(self.boxes(epoch, i, image.shape[2], image.shape[1]))), label, key
        crops = [resized_crop(image, box, size) for box in self.boxes(epoch, i, image.shape[2], image.shape[1])]
        return (crops[0], crops[1]), label, key

    def collate(self, items: list) -> Any:
        """A batch: ((A crops, B crops), labels, keys), or, for decode="cuda", (files, boxes (N, 2, 4),
        labels, keys)."""
        labels = torch.tensor([label for _, label, _ in items])
        keys = [key for _, _, key in items]
        if self.decode == "cuda":
            return [x[0] for x, _, _ in items], torch.stack([x[1] for x, _, _ in items]), labels, keys
        return (torch.stack([x[0] for x, _, _ in items]), torch.stack([x[1] for x, _, _ in items])), labels, keys

    def finish(self, device: torch.device) -> Callable[[Any], Any]:
        """What the main process does to each collated batch: ((A, B), labels), on ``device``."""

        def cropped(batch: Any) -> Any:
            crops, labels, _ = batch
            return crops, labels

        def on_device(batch: Any) -> Any:
            files, boxes, labels, keys = batch
            paths = [self.folder.samples[i][0] for _, i in keys]
            images = decode_batch(files, paths, self.folder.channels, device, self.rejected)
            return batched_resized_crops(images, boxes, self.folder.size), labels.to(device)

        return on_device if self.decode == "cuda" else cropped


def wait_for_stream(device: torch.device) -> None:
    """On CUDA, block until the caller's stream has run everything queued on it. nvJPEG's hardware
    decoder does not wait for that work: without this, torchvision's decode_jpeg(device="cuda") can write
    into memory that the caching allocator has just handed back while queued kernels still read it
    (pytorch/vision#9606: 134 of 200 iterations corrupted on an H100; none after draining the stream)."""
    if torch.device(device).type == "cuda":
        torch.cuda.current_stream(device).synchronize()


def decode_on(device: torch.device, data: Tensor | list[Tensor], mode: Any) -> Any:
    """torchvision's decode_jpeg of one file or a batch on ``device``, after ``wait_for_stream``."""
    from torchvision.io import decode_jpeg

    wait_for_stream(device)
    return decode_jpeg(data, mode=mode, device=device)


def decode_batch(
    files: list[Tensor], paths: list[str], channels: int, device: torch.device, rejected: set[str] | None = None
) -> list[Tensor]:
    """Encoded JPEGs (1-D uint8 on the CPU) decoded on ``device`` in one call (nvJPEG's batched decode
    on CUDA, after ``wait_for_stream``); images decoded already (files that were not JPEGs) are moved
    there. A JPEG the device's decoder rejects (nvJPEG: CMYK JPEGs, say) is decoded on the CPU instead
    (libjpeg-turbo, as data.decode=cpu), named in the log once, and added to ``rejected``: its paths
    go to the CPU directly in later batches. A file neither decodes is named in a ConfigError."""
    from torchvision.io import ImageReadMode

    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    rejected = set() if rejected is None else rejected
    out = [f.to(device, non_blocking=True) if f.dim() == 3 else f for f in files]
    for k in [k for k, f in enumerate(files) if f.dim() == 1 and paths[k] in rejected]:
        out[k] = decode_tensor(files[k], paths[k], channels).to(device)
    encoded = [k for k, f in enumerate(files) if f.dim() == 1 and paths[k] not in rejected]
    if not encoded:
        return out
    try:
        decoded = decode_on(device, [files[k] for k in encoded], mode)
    except Exception:  # which file was it
        decoded = []
        for k in encoded:
            try:
                decoded.append(decode_on(device, files[k], mode))
            except Exception as exc:
                image = decode_tensor(files[k], paths[k], channels).to(device)  # a corrupt file raises here
                log.warning(f"ssrl: decoding on {device} rejects {paths[k]} ({exc}); decoded on the CPU instead")
                rejected.add(paths[k])
                decoded.append(image)
    for k, image in zip(encoded, decoded, strict=True):
        out[k] = image
    return out


def imagefolder(cfg: Any) -> Splits:
    """ImageNet-100, TinyImageNet or any folder laid out as data.root/{train,val}/<class>/<image>.

    The folder's val/ is the test split (as ImageNet's is reported); ssrl's val is a seeded slice of
    train/. Class indices are train/'s, in every split."""
    check_folder(cfg)
    root = Path(str(cfg.root)).expanduser()
    classes = list_classes(root / "train")
    parts = {
        split: FolderImages(list_images(root / split, classes), classes, cfg.image_size, cfg.decode_size, cfg.channels)
        for split in ("train", "val")
    }
    train, val = split_off_val(parts["train"], np.asarray(parts["train"].targets), cfg)
    return Splits(train, train, val, parts["val"], len(classes))


def check_folder(cfg: Any) -> None:
    """Fail early, naming data.root, when the folder lacks train/ or val/ class folders."""
    if cfg.root is None:
        raise ConfigError("data.root is required for data=imagefolder: a folder with train/ and val/ inside")
    root = Path(str(cfg.root)).expanduser()
    for split in ("train", "val"):
        folder = root / split
        if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
            raise ConfigError(
                f"data.root={root}: expected class folders under {folder} (layout: "
                "data.root/train/<class>/<image> and data.root/val/<class>/<image>)"
            )
