"""A catalogue of awkward image files, each read through the ``image_folder`` kind.

Every case writes a tiny dataset folder and states what must come out: the exact decoded pixels
(worked out by hand below, not by asking PIL), or a DataFileError that names the offending file.
"Silently wrong" (clipped 16-bit, dropped alpha, a float image read as black, a sideways photo)
fails the pixel comparison. The conventions checked are those in the docstring of
:mod:`ganaug.data.decode`: alpha on black, 16-bit by its high byte, floats in [0, 1],
EXIF orientation applied, the first frame of a multi-frame file.
"""

from __future__ import annotations

import os
import struct
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ganaug.data.prepare import DATASET_KINDS, parse_dataset_config
from ganaug.io import DataFileError

# ------------------------------------------------------------------------------------------
# What a case expects
# ------------------------------------------------------------------------------------------


@dataclass
class Pixels:
    """The dataset reads exactly these images (load order), classes and decoding notes."""

    images: list[np.ndarray]  # each uint8 (H, W) for 1 channel or (H, W, 3)
    classes: list[str] = field(default_factory=lambda: ["c"])
    notes: dict[str, int] = field(default_factory=dict)  # meta decoding.<note> -> count


@dataclass
class Refused:
    """Reading fails with a DataFileError naming ``path`` and saying ``says``."""

    path: Path
    says: str


@dataclass
class RightOrRefused:
    """Either the right pixels or a clear refusal: for files that some PIL versions mis-decode."""

    right: Pixels
    refused: Refused


@dataclass
class Case:
    build: Callable[[Path], Pixels | Refused | RightOrRefused]  # writes under the dataset root
    channels: int = 1
    size: tuple[int, int] | None = None  # (H, W); default: the expected images' size
    params: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------
# Writing files
# ------------------------------------------------------------------------------------------


def save(path: Path, img: Image.Image, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def u8(rows) -> np.ndarray:
    return np.asarray(rows, dtype=np.uint8)


def write_png(path: Path, width: int, height: int, bit_depth: int, colour_type: int,
              data: bytes, idat: bytes | None = None) -> Path:
    """A PNG written by hand (PIL cannot write 16-bit colour, nor lie about its size)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    if idat is None:
        row = len(data) // height
        idat = zlib.compress(b"".join(b"\x00" + data[i * row:(i + 1) * row] for i in range(height)))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))
    return path


def on_black(value: int, alpha: int) -> int:
    """Compositing over black by hand: value * alpha / 255, rounded half up."""
    return int(value * alpha / 255 + 0.5)


GRID = u8([[0, 10, 20], [30, 40, 50]])  # 2x3, every pixel distinct: orientation is visible


def with_orientation(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


# Orientation -> what a viewer shows, in numpy terms (independent of PIL's transpose table).
UPRIGHT = {
    1: lambda a: a, 2: np.fliplr, 3: lambda a: np.rot90(a, 2), 4: np.flipud,
    5: lambda a: a.T, 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).T,
    8: lambda a: np.rot90(a, 1),
}


# ------------------------------------------------------------------------------------------
# The cases
# ------------------------------------------------------------------------------------------


def png_1bit(root):
    bits = np.array([[0, 1, 1], [1, 0, 0]], dtype=bool)
    save(root / "c" / "x.png", Image.fromarray(bits))
    return Pixels([u8([[0, 255, 255], [255, 0, 0]])])


def png_grey(root):
    save(root / "c" / "x.png", Image.fromarray(GRID))
    return Pixels([GRID])


def png_grey_as_rgb(root):
    save(root / "c" / "x.png", Image.fromarray(GRID))
    return Pixels([np.stack([GRID] * 3, axis=-1)])


def png_rgb_as_grey(root):
    # ITU-R 601 luma of pure red, green, blue and white: 0.299, 0.587, 0.114 of 255.
    rgb = u8([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]])
    save(root / "c" / "x.png", Image.fromarray(rgb))
    return Pixels([u8([[76, 150, 29, 255]])])


def png_rgb(root):
    rgb = u8([[[1, 2, 3], [250, 128, 7]], [[0, 0, 0], [99, 199, 255]]])
    save(root / "c" / "x.png", Image.fromarray(rgb))
    return Pixels([rgb])


def png_la(root):
    la = u8([[[200, 255], [200, 0], [200, 128], [255, 51]]])
    save(root / "c" / "x.png", Image.fromarray(la, "LA"))
    expected = [[on_black(200, 255), on_black(200, 0), on_black(200, 128), on_black(255, 51)]]
    assert expected == [[200, 0, 100, 51]]
    return Pixels([u8(expected)], notes={"alpha_on_black": 1})


def png_rgba(root):
    rgba = u8([[[255, 128, 10, 255], [255, 128, 10, 0], [90, 60, 30, 170]]])
    save(root / "c" / "x.png", Image.fromarray(rgba))
    return Pixels([u8([[[255, 128, 10], [0, 0, 0], [60, 40, 20]]])], notes={"alpha_on_black": 1})


def palette(colours: list[tuple[int, int, int]], indices) -> Image.Image:
    img = Image.new("P", (len(indices[0]), len(indices)))
    img.putpalette([v for c in colours for v in c])
    img.putdata([i for row in indices for i in row])
    return img


COLOURS = [(10, 20, 30), (200, 100, 50), (0, 255, 0)]


def png_palette(root):
    save(root / "c" / "x.png", palette(COLOURS, [[0, 1, 2]]))
    return Pixels([u8([COLOURS])])


def png_palette_transparent_index(root):
    save(root / "c" / "x.png", palette(COLOURS, [[0, 1, 2]]), transparency=1)
    return Pixels([u8([[COLOURS[0], (0, 0, 0), COLOURS[2]]])], notes={"alpha_on_black": 1})


def png_palette_alpha_bytes(root):
    # tRNS with one alpha per palette entry: 255, 128, 0.
    save(root / "c" / "x.png", palette(COLOURS, [[0, 1, 2]]), transparency=bytes([255, 128, 0]))
    half = tuple(on_black(v, 128) for v in COLOURS[1])
    return Pixels([u8([[COLOURS[0], half, (0, 0, 0)]])], notes={"alpha_on_black": 1})


def gif_transparent(root):
    save(root / "c" / "x.gif", palette(COLOURS, [[0, 1, 2]]), transparency=2)
    return Pixels([u8([[COLOURS[0], COLOURS[1], (0, 0, 0)]])], notes={"alpha_on_black": 1})


def tiff_palette_alpha(root):
    # PIL mode PA: palette index plus an alpha channel.
    img = Image.merge("PA", (palette(COLOURS, [[0, 1, 2]]), Image.fromarray(u8([[255, 0, 64]]))))
    save(root / "c" / "x.tiff", img)
    quarter = tuple(on_black(v, 64) for v in COLOURS[2])
    return Pixels([u8([[COLOURS[0], (0, 0, 0), quarter]])], notes={"alpha_on_black": 1})


def png_grey_colour_key(root):
    save(root / "c" / "x.png", Image.fromarray(GRID), transparency=40)  # tRNS: grey 40 is clear
    return Pixels([u8([[0, 10, 20], [30, 0, 50]])], notes={"alpha_on_black": 1})


def png_rgb_colour_key(root):
    rgb = u8([[[9, 9, 9], [1, 2, 3]]])
    save(root / "c" / "x.png", Image.fromarray(rgb), transparency=(9, 9, 9))
    return Pixels([u8([[[0, 0, 0], [1, 2, 3]]])], notes={"alpha_on_black": 1})


def tiff_cmyk(root):
    # No colour profile is applied: R = (255 - C)(255 - K) / 255 and so on. Pure cyan, white,
    # black and red: extremes, on which every naive CMYK -> RGB formula agrees.
    img = Image.new("CMYK", (4, 1))
    img.putdata([(255, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 255), (0, 255, 255, 0)])
    save(root / "c" / "x.tiff", img)
    return Pixels([u8([[[0, 255, 255], [255, 255, 255], [0, 0, 0], [255, 0, 0]]])])


def tiff_ycbcr(root):
    # Chroma at its neutral 128: R = G = B = Y.
    img = Image.new("YCbCr", (3, 1))
    img.putdata([(0, 128, 128), (100, 128, 128), (255, 128, 128)])
    save(root / "c" / "x.tiff", img)
    return Pixels([u8([[[0] * 3, [100] * 3, [255] * 3]])])


SIXTEEN = np.array([[0, 255, 256, 257 * 128], [1000, 65280, 65535, 12345]], dtype=np.uint16)
SIXTEEN_HIGH_BYTE = u8([[0, 0, 1, 128], [3, 255, 255, 48]])  # v // 256, never clipped at 255


def png_16bit(root):
    save(root / "c" / "x.png", Image.fromarray(SIXTEEN))  # PIL mode I;16
    return Pixels([SIXTEEN_HIGH_BYTE], notes={"scaled_16bit": 1})


def tiff_16bit(root):
    save(root / "c" / "x.tiff", Image.fromarray(SIXTEEN))
    return Pixels([SIXTEEN_HIGH_BYTE], notes={"scaled_16bit": 1})


def tiff_16bit_big_endian(root):
    big = Image.frombytes("I;16B", (4, 2), SIXTEEN.astype(">u2").tobytes())
    save(root / "c" / "x.tif", big)
    return Pixels([SIXTEEN_HIGH_BYTE], notes={"scaled_16bit": 1})


def png_16bit_rgb(root):
    rgb = np.stack([SIXTEEN, SIXTEEN[::-1], SIXTEEN[:, ::-1]], axis=-1)  # (2, 4, 3)
    write_png(root / "c" / "x.png", 4, 2, 16, 2, rgb.astype(">u2").tobytes())
    return Pixels([np.stack([SIXTEEN_HIGH_BYTE, SIXTEEN_HIGH_BYTE[::-1],
                             SIXTEEN_HIGH_BYTE[:, ::-1]], axis=-1)])


def png_16bit_grey_alpha(root):
    la = np.array([[[257 * 200, 65535], [257 * 200, 257 * 128], [65535, 0]]], dtype=">u2")
    write_png(root / "c" / "x.png", 3, 1, 16, 4, la.tobytes())
    return Pixels([u8([[200, on_black(200, 128), 0]])], notes={"alpha_on_black": 1})


def png_16bit_colour_key(root):
    save(root / "c" / "x.png", Image.fromarray(SIXTEEN), transparency=1000)
    return Refused(root / "c" / "x.png", "transparent colour key on a I;16 image")


def tiff_int32_in_range(root):
    save(root / "c" / "x.tiff", Image.fromarray(GRID.astype(np.int32)))
    return Pixels([GRID])


def tiff_int32_out_of_range(root):
    save(root / "c" / "x.tiff", Image.fromarray(np.array([[0, 1000]], dtype=np.int32)))
    return Refused(root / "c" / "x.tiff", "32-bit integer (PIL mode I) image with values in [0, 1000]")


def tiff_float(root):
    f = np.array([[0.0, 0.25, 0.5], [0.002, 0.998, 1.0]], dtype=np.float32)
    save(root / "c" / "x.tiff", Image.fromarray(f))
    # 255 x: 0, 63.75, 127.5, 0.51, 254.49, 255, rounded (127.5 is exact in float32 and goes
    # to the even 128).
    return Pixels([u8([[0, 64, 128], [1, 254, 255]])], notes={"scaled_float": 1})


def tiff_float_out_of_range(root):
    save(root / "c" / "x.tiff", Image.fromarray(np.array([[0.0, 200.0]], dtype=np.float32)))
    return Refused(root / "c" / "x.tiff", "float (PIL mode F) image with values in [0, 200]")


def tiff_float_nan(root):
    save(root / "c" / "x.tiff", Image.fromarray(np.array([[0.0, np.nan]], dtype=np.float32)))
    return Refused(root / "c" / "x.tiff", "non-finite values")


def tiff_lab(root):
    save(root / "c" / "x.tiff", Image.new("LAB", (2, 2), (50, 128, 128)))
    return Refused(root / "c" / "x.tiff", "unsupported image mode 'LAB'")


def frames(values: list[int]) -> list[Image.Image]:
    return [Image.fromarray(np.full((2, 3), v, np.uint8)) for v in values]


def tiff_pages(root):
    first, *rest = frames([10, 200, 90])
    save(root / "c" / "x.tiff", first, save_all=True, append_images=rest)
    return Pixels([np.full((2, 3), 10, np.uint8)], notes={"first_frame_only": 1})


def gif_animated(root):
    first, *rest = frames([10, 200])
    save(root / "c" / "x.gif", first, save_all=True, append_images=rest)
    return Pixels([np.full((2, 3), 10, np.uint8)], notes={"first_frame_only": 1})


def png_exif(orientation: int):
    def build(root):
        save(root / "c" / "x.png", Image.fromarray(GRID), exif=with_orientation(orientation))
        return Pixels([UPRIGHT[orientation](GRID)], notes={"exif_rotated": int(orientation > 1)})
    return build


def png_corrupt_exif(root):
    # Read as stored (no orientation known), as every viewer shows it; counted in the meta.
    save(root / "c" / "x.png", Image.fromarray(GRID), exif=b"Exif\x00\x00garbage, not TIFF")
    return Pixels([GRID], notes={"exif_unreadable": 1, "exif_rotated": 0})


def tiff_exif_compressed(root):
    save(root / "c" / "x.tiff", Image.fromarray(GRID), exif=with_orientation(6),
         compression="tiff_lzw")
    return Pixels([UPRIGHT[6](GRID)], notes={"exif_rotated": 1})


def tiff_exif_uncompressed(root):
    # Pillow 13 decodes these (orientation 5-8, not square) into scrambled pixels.
    save(root / "c" / "x.tiff", Image.fromarray(GRID), exif=with_orientation(6))
    return RightOrRefused(Pixels([UPRIGHT[6](GRID)], notes={"exif_rotated": 1}),
                          Refused(root / "c" / "x.tiff", "orientation"))


def jpeg_flat(root):
    # A flat grey JPEG decodes exactly; 32x32 read at 16x16 goes through JPEG draft decoding.
    save(root / "c" / "x.jpg", Image.fromarray(np.full((32, 32), 137, np.uint8)), quality=95)
    return Pixels([np.full((16, 16), 137, np.uint8)])


def truncated(ext: str):
    def build(root):
        rng = np.random.default_rng(0)
        path = save(root / "c" / f"x.{ext}",
                    Image.fromarray(rng.integers(0, 256, (32, 32), dtype=np.uint8)))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return Refused(path, "unreadable image")
    return build


def zero_bytes(root):
    path = root / "c" / "x.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    return Refused(path, "unreadable image")


def not_an_image(root):
    path = root / "c" / "x.jpg"
    path.parent.mkdir(parents=True)
    path.write_text("<html>404 not found</html>")
    return Refused(path, "unreadable image")


def bomb(width: int, height: int):
    # A header that promises width x height pixels and almost no data: PIL must refuse it from
    # the header, before decoding (a test that hangs or fills memory here has failed).
    def build(root):
        path = write_png(root / "c" / "x.png", width, height, 8, 0, b"", idat=zlib.compress(b"\0"))
        return Refused(path, "decompression bomb")
    return build


def hidden_and_junk_files(root):
    save(root / "c" / "x.png", Image.fromarray(GRID))
    (root / "c" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "c" / "._x.png").write_bytes(b"\0\5\26\7AppleDouble")  # macOS resource fork
    (root / "c" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "c" / "desktop.ini").write_text("[.ShellClassInfo]")
    (root / ".hidden_class").mkdir()
    (root / "__MACOSX" / "c").mkdir(parents=True)
    (root / "__MACOSX" / "c" / "._x.png").write_bytes(b"\0\5\26\7")
    return Pixels([GRID])


def uppercase_extensions(root):
    save(root / "c" / "A.PNG", Image.fromarray(GRID))
    save(root / "c" / "B.TIF", Image.fromarray(GRID[::-1]), format="TIFF")
    save(root / "c" / "C.Tiff", Image.fromarray(GRID[:, ::-1]), format="TIFF")
    return Pixels([GRID, GRID[::-1], GRID[:, ::-1]])


NFD = unicodedata.normalize("NFD", "überrascht")  # as macOS names a folder


def odd_class_names(root):
    shade = {"very happy": 0, NFD: 1, "a;b": 2, "日本": 3}
    for name, k in shade.items():
        save(root / name / "x.png", Image.fromarray(GRID + k))
    # Class names come out in NFC, sorted: "a;b", "very happy", "überrascht", "日本".
    return Pixels([GRID + 2, GRID + 0, GRID + 1, GRID + 3],
                  classes=["a;b", "very happy", "überrascht", "日本"])


def empty_class_folder(root):
    save(root / "a" / "x.png", Image.fromarray(GRID))
    (root / "b").mkdir()
    return Refused(root / "b", "empty class folder")


def symlink_loop_file(root):
    save(root / "c" / "a.png", Image.fromarray(GRID))
    os.symlink("loop.png", root / "c" / "loop.png")  # points at itself
    return Refused(root / "c" / "loop.png", "broken symbolic link")


def symlink_cycle_folder(root):
    save(root / "c" / "a.png", Image.fromarray(GRID))
    os.symlink("..", root / "c" / "up")  # c/up/c/up/...: a class folder's sub-folders are not read
    return Pixels([GRID])


def symlink_loop_folder(root):
    save(root / "c" / "a.png", Image.fromarray(GRID))
    os.symlink("d", root / "d")  # would-be class folder d points at itself: not silently skipped
    return Refused(root / "d", "broken symbolic link")


CATALOGUE: dict[str, Case] = {
    "png-1bit": Case(png_1bit),
    "png-grey": Case(png_grey),
    "png-grey-as-rgb": Case(png_grey_as_rgb, channels=3),
    "png-rgb-as-grey-luma": Case(png_rgb_as_grey),
    "png-rgb": Case(png_rgb, channels=3),
    "png-LA-on-black": Case(png_la),
    "png-RGBA-on-black": Case(png_rgba, channels=3),
    "png-P": Case(png_palette, channels=3),
    "png-P-transparent-index": Case(png_palette_transparent_index, channels=3),
    "png-P-alpha-bytes": Case(png_palette_alpha_bytes, channels=3),
    "gif-P-transparent": Case(gif_transparent, channels=3, params={"extensions": [".gif"]}),
    "tiff-PA-on-black": Case(tiff_palette_alpha, channels=3),
    "png-grey-colour-key": Case(png_grey_colour_key),
    "png-rgb-colour-key": Case(png_rgb_colour_key, channels=3),
    "tiff-CMYK": Case(tiff_cmyk, channels=3),
    "tiff-YCbCr": Case(tiff_ycbcr, channels=3),
    "png-16bit-scaled": Case(png_16bit),
    "tiff-16bit-scaled": Case(tiff_16bit),
    "tiff-16bit-big-endian-scaled": Case(tiff_16bit_big_endian),
    "png-16bit-rgb-scaled": Case(png_16bit_rgb, channels=3),
    "png-16bit-grey-alpha": Case(png_16bit_grey_alpha),
    "png-16bit-colour-key-refused": Case(png_16bit_colour_key, size=(2, 4)),
    "tiff-int32-in-range": Case(tiff_int32_in_range),
    "tiff-int32-out-of-range": Case(tiff_int32_out_of_range, size=(1, 2)),
    "tiff-float": Case(tiff_float),
    "tiff-float-out-of-range": Case(tiff_float_out_of_range, size=(1, 2)),
    "tiff-float-nan": Case(tiff_float_nan, size=(1, 2)),
    "tiff-LAB-refused": Case(tiff_lab, channels=3, size=(2, 2)),
    "tiff-multipage-first": Case(tiff_pages),
    "gif-animated-first": Case(gif_animated, params={"extensions": [".gif"]}),
    **{f"png-exif-orientation-{o}": Case(png_exif(o)) for o in range(1, 9)},
    "png-corrupt-exif-as-stored": Case(png_corrupt_exif),
    "tiff-exif-orientation-6-lzw": Case(tiff_exif_compressed),
    "tiff-exif-orientation-6-raw": Case(tiff_exif_uncompressed),
    "jpeg-flat-draft": Case(jpeg_flat, size=(16, 16)),
    **{f"truncated-{ext}": Case(truncated(ext), size=(32, 32))
       for ext in ("png", "jpg", "tiff", "bmp")},
    "zero-byte": Case(zero_bytes, size=(8, 8)),
    "not-an-image": Case(not_an_image, size=(8, 8)),
    "bomb": Case(bomb(30000, 30000), size=(8, 8)),  # 900M pixels: PIL's own error
    "bomb-warning-range": Case(bomb(10000, 10000), size=(8, 8)),  # 100M: PIL only warns
    "hidden-and-junk-files-ignored": Case(hidden_and_junk_files),
    "uppercase-extensions": Case(uppercase_extensions),
    "class-names-space-unicode-semicolon": Case(odd_class_names),
    "empty-class-folder": Case(empty_class_folder, size=(2, 3)),
    "symlink-loop-file": Case(symlink_loop_file, size=(2, 3)),
    "symlink-loop-folder": Case(symlink_loop_folder, size=(2, 3)),
    "symlink-cycle-folder-ignored": Case(symlink_cycle_folder),
}


# ------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------


def read(root: Path, case: Case, size: tuple[int, int]):
    value = {"kind": "image_folder", "path": str(root), "channels": case.channels,
             "size": list(size), "workers": 2, **case.params}
    if "extensions" in case.params:  # add to the defaults
        value["extensions"] = [".png", ".tif", ".tiff", *case.params["extensions"]]
    cfg = parse_dataset_config("case", value)
    return DATASET_KINDS["image_folder"].load(cfg)


def check_pixels(raw, want: Pixels) -> None:
    assert raw.classes == want.classes
    got = [x.transpose(1, 2, 0) for x in raw.x]  # (C, H, W) -> (H, W, C)
    assert len(got) == len(want.images)
    for g, w in zip(got, want.images, strict=True):
        w = w[..., None] if w.ndim == 2 else w
        assert g.shape == w.shape and g.tolist() == w.tolist()
    for note, n in want.notes.items():
        assert raw.info["decoding"][note] == n, note


def check_refused(exc: DataFileError, want: Refused) -> None:
    msg = str(exc)
    assert msg.startswith(str(want.path)) and want.says in msg, msg
    assert "Traceback" not in msg


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_catalogue(name, tmp_path):
    case = CATALOGUE[name]
    root = tmp_path / "ds"
    root.mkdir()
    want = case.build(root)
    pixels = want.right if isinstance(want, RightOrRefused) else want
    size = case.size or (pixels.images[0].shape[:2] if isinstance(pixels, Pixels) else None)
    try:
        raw = read(root, case, size)
    except DataFileError as exc:
        if isinstance(want, Pixels):
            raise
        check_refused(exc, want.refused if isinstance(want, RightOrRefused) else want)
        return
    assert not isinstance(want, Refused), f"expected a DataFileError: {want.says}"
    check_pixels(raw, pixels)
