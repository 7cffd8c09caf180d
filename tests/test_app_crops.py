import numpy as np
import pytest

from app import crops


def test_box_is_centred_on_the_click():
    box = crops.crop_box((100, 60), 32, (512, 768, 3))
    assert (box.x0, box.y0, box.x1, box.y1) == (84, 44, 116, 76)
    assert box.centre == (100, 60)


@pytest.mark.parametrize("centre, expected", [
    ((0, 0), (0, 0)),            # top-left corner: pushed inside
    ((767, 511), (768 - 64, 512 - 64)),
    ((5, 500), (0, 512 - 64)),
])
def test_box_is_moved_inside_the_image(centre, expected):
    box = crops.crop_box(centre, 64, (512, 768, 3))
    assert (box.x0, box.y0) == expected
    assert box.width == box.height == 64
    assert 0 <= box.x0 and box.x1 <= 768 and 0 <= box.y0 and box.y1 <= 512


def test_box_larger_than_image_is_cut_and_none_means_centre():
    box = crops.crop_box(None, 256, (40, 300, 3))
    assert (box.width, box.height) == (256, 40)
    assert box.y0 == 0 and box.x0 == (300 - 256) // 2


def test_size_and_zoom_are_clamped():
    assert crops.clamp_size(8) == crops.CROP_MIN and crops.clamp_size(1000) == crops.CROP_MAX
    assert crops.clamp_zoom(1) == crops.ZOOM_MIN and crops.clamp_zoom(20) == crops.ZOOM_MAX
    assert crops.clamp_zoom("3") == 3


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e999", float("inf")])
def test_non_finite_size_and_zoom_are_refused(bad):
    # round(float("inf")) raises OverflowError; both clamps must raise ValueError instead.
    with pytest.raises(ValueError):
        crops.clamp_size(bad)
    with pytest.raises(ValueError):
        crops.clamp_zoom(bad)


def test_zoom_is_nearest_neighbour():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    z = crops.zoom_nearest(img, 4)
    assert z.shape == (8, 12, 3)
    # Every 4x4 block repeats one source pixel exactly (no interpolation).
    for r in range(2):
        for c in range(3):
            assert (z[r * 4:(r + 1) * 4, c * 4:(c + 1) * 4] == img[r, c]).all()


def test_zoomed_crop_takes_the_box_pixels():
    img = np.random.default_rng(0).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    box = crops.crop_box((30, 20), 32, img.shape)
    out = crops.zoomed_crop(img, box, 2)
    assert np.array_equal(out[::2, ::2], img[box.y0:box.y1, box.x0:box.x1])


def test_draw_box_outlines_outside_and_keeps_the_crop_untouched():
    img = np.zeros((100, 100, 3), np.uint8)
    box = crops.Box(40, 40, 60, 60)
    out = crops.draw_box(img, box, colour=(255, 0, 0), width=2, ring=None)
    assert (out[40:60, 40:60] == 0).all()  # inside untouched
    assert (out[38, 38:62] == [255, 0, 0]).all() and (out[61, 38:62] == [255, 0, 0]).all()
    assert (out[38:62, 38] == [255, 0, 0]).all() and (out[38:62, 61] == [255, 0, 0]).all()
    assert (out[:36] == 0).all()  # nothing else changed
    assert (img == 0).all()  # input not modified


def test_draw_box_ring_sits_outside_the_colour():
    img = np.full((100, 100, 3), 200, np.uint8)
    out = crops.draw_box(img, crops.Box(40, 40, 60, 60), colour=(0, 255, 0), width=2, ring=(0, 0, 0))
    assert (out[39, 40:60] == [0, 255, 0]).all() and (out[38, 40:60] == [0, 255, 0]).all()
    assert (out[37, 40:60] == 0).all() and (out[36, 36:64] == 0).all()
    assert (out[35] == 200).all() and (out[40:60, 40:60] == 200).all()


def test_draw_box_at_the_border_stays_in_bounds():
    img = np.zeros((50, 50, 3), np.uint8)
    out = crops.draw_box(img, crops.Box(0, 0, 50, 50), width=3)
    assert out.shape == img.shape and (out == 0).all()  # no room outside: nothing drawn, no error


def test_a_centre_from_a_link_is_moved_inside_the_image():
    assert crops.clamp_centre((99999, -5), (64, 96, 3)) == (95, 0)
    assert crops.clamp_centre((10, 20), (64, 96, 3)) == (10, 20)


def test_parse_click():
    assert crops.parse_click([10, 20], (64, 64, 3)) == (10, 20)
    assert crops.parse_click([10.4, 19.6], (64, 64, 3)) == (10, 20)
    assert crops.parse_click([64, 0], (64, 64, 3)) is None
    assert crops.parse_click(None, (64, 64, 3)) is None
    assert crops.parse_click("ab", (64, 64, 3)) is None
