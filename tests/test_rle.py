import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from trainers.rle import rle_decode, rle_encode


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12).flatmap(lambda h: st.integers(1, 12).flatmap(
    lambda w: arrays(np.uint8, (h, w), elements=st.integers(0, 1)))))
def test_encoding_and_decoding_round_trip_exactly(mask):
    text = rle_encode(mask)
    assert np.array_equal(rle_decode(text, *mask.shape), mask)
    numbers = list(map(int, text.split()))
    assert all(n >= 1 for n in numbers) and numbers[0::2] == sorted(numbers[0::2])  # 1-based starts, in order


def test_pixels_are_counted_top_to_bottom_then_left_to_right():
    mask = np.zeros((4, 3), np.uint8)
    mask[1:3, 0] = 1  # pixels 2 and 3 of the first column
    mask[0, 1] = 1  # pixel 5: the top of the second column
    assert rle_encode(mask) == "2 2 5 1"
    assert rle_encode(np.zeros((2, 2))) == ""


@pytest.mark.parametrize("text, reason", [("1 2 3", "pairs"), ("0 2", "outside"), ("10 5", "outside"), ("a b", "numbers")])
def test_bad_run_length_text_says_what_is_wrong(text, reason):
    with pytest.raises(ValueError, match=reason):
        rle_decode(text, 3, 4)
