"""The pure resource arithmetic of §2 (no database)."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from config.errors import InvalidImageConfig, ResourceOverflow
from config.units import BIGINT_MAX, human_bytes
from nodes.resources import (
    ImageSpec,
    PropertySpec,
    Resources,
    carry_over,
    full_config,
    required_allocation,
    usable_config,
)

GiB = 1024**3


def spec(minimum=(2, 8 * GiB, 100 * GiB), properties=(), protocol="ethereum", id="img"):
    return ImageSpec(id=id, protocol=protocol, version="1", minimum=Resources(*minimum), properties=tuple(properties))


def prop(key, default="off", adds=(0, 0, 0)):
    return PropertySpec(key, default, Resources(*adds))


def test_required_allocation_is_the_minimum_when_every_value_is_default():
    image = spec(properties=[prop("rpc", adds=(1, GiB, 0))])
    assert required_allocation(image, {"rpc": "off"}) == Resources(2, 8 * GiB, 100 * GiB)


def test_a_changed_value_adds_its_resources():
    image = spec(properties=[prop("rpc", adds=(1, GiB, 0)), prop("archive", adds=(0, 0, 50 * GiB))])
    assert required_allocation(image, {"rpc": "on", "archive": "off"}) == Resources(3, 9 * GiB, 100 * GiB)


def test_negative_adds_floor_at_the_minimum():
    image = spec(properties=[prop("lite", adds=(-5, -GiB, 0))])
    assert required_allocation(image, {"lite": "on"}) == Resources(2, 8 * GiB, 100 * GiB)


def test_negative_adds_combine_with_positive_ones_before_the_floor():
    image = spec(properties=[prop("a", adds=(3, 0, 0)), prop("b", adds=(-2, 0, 0))])
    assert required_allocation(image, {"a": "on", "b": "on"}).cpu_cores == 3


def test_keys_the_image_lacks_add_nothing():
    assert required_allocation(spec(), {"unknown": "x"}) == Resources(2, 8 * GiB, 100 * GiB)


def test_carry_over_keeps_changed_values_and_drops_keys_the_new_image_lacks():
    old = spec(properties=[prop("rpc"), prop("legacy")], id="old")
    new = spec(properties=[prop("rpc"), prop("metrics", default="on")], id="new")
    config, warnings = carry_over({"rpc": "on", "legacy": "on"}, old, new)
    assert config == {"rpc": "on", "metrics": "on"}
    assert warnings == []


def test_carry_over_takes_the_new_default_for_values_equal_to_the_old_default():
    old = spec(properties=[prop("mode", default="snap")], id="old")
    new = spec(properties=[prop("mode", default="full")], id="new")
    assert carry_over({"mode": "snap"}, old, new)[0] == {"mode": "full"}


def test_carry_over_keeps_values_of_keys_the_old_image_lacked():
    old = spec(id="old")
    new = spec(properties=[prop("mode", default="full")], id="new")
    assert carry_over({"mode": "light"}, old, new)[0] == {"mode": "light"}


@pytest.mark.parametrize("stored", [None, ["a", "b"], "text", 7])
def test_a_missing_or_non_object_config_falls_back_to_defaults_with_a_warning(stored):
    new = spec(properties=[prop("rpc", default="off")], id="new")
    config, warnings = carry_over(stored, spec(id="old"), new)
    assert config == {"rpc": "off"}
    assert len(warnings) == 1


def test_non_string_values_are_dropped_one_by_one_with_a_warning_each():
    usable, warnings = usable_config({"a": "x", "b": 3, "c": None, "d": {"x": 1}})
    assert usable == {"a": "x"}
    assert [w.split("'")[1] for w in warnings] == ["b", "c", "d"]


def test_full_config_fills_defaults():
    image = spec(properties=[prop("a", default="1"), prop("b", default="2")])
    assert full_config(image, {"b": "3"}) == {"a": "1", "b": "3"}


def test_image_validation_refuses_negative_minimums():
    with pytest.raises(InvalidImageConfig, match="min_memory_bytes = -1"):
        spec(minimum=(1, -1, 0)).validate()


def test_overflow_is_checked_at_the_end_not_clamped():
    big = spec(minimum=(BIGINT_MAX, 0, 0), properties=[prop("x", adds=(1, 0, 0))])
    allocation = required_allocation(big, {"x": "on"})
    assert allocation.cpu_cores == BIGINT_MAX + 1  # exact, not clamped
    with pytest.raises(ResourceOverflow) as caught:
        allocation.check_within_bigint("node")
    assert caught.value.extra == {"resource": "cpu_cores"}


def test_the_limit_itself_is_allowed():
    assert Resources(BIGINT_MAX, BIGINT_MAX, BIGINT_MAX).check_within_bigint("x").cpu_cores == BIGINT_MAX


@pytest.mark.parametrize(
    ("amount", "text"), [(0, "0 B"), (1023, "1023 B"), (8 * GiB, "8.0 GiB"), (int(7.5 * 1024**4), "7.5 TiB")]
)
def test_human_bytes(amount, text):
    assert human_bytes(amount) == text


amounts = st.integers(min_value=0, max_value=BIGINT_MAX)
signed = st.integers(min_value=-BIGINT_MAX, max_value=BIGINT_MAX)
triples = st.tuples(amounts, amounts, amounts).map(lambda t: Resources(*t))


@given(st.lists(st.tuples(triples, triples), max_size=20))
def test_deltas_of_a_sequence_of_upgrades_sum_to_last_minus_first(steps):
    """Counters moved by (new - old) at each step end at the sum of the final allocations."""
    allocations = [a for pair in steps for a in pair]
    if not allocations:
        return
    total = Resources()
    for before, after in itertools.pairwise(allocations):
        total = total + (after - before)
    assert total == allocations[-1] - allocations[0]


@given(st.integers(min_value=0, max_value=BIGINT_MAX), st.integers(min_value=-BIGINT_MAX, max_value=BIGINT_MAX))
def test_overflow_boundary(minimum, add):
    image = spec(minimum=(minimum, 0, 0), properties=[prop("x", adds=(add, 0, 0))])
    allocation = required_allocation(image, {"x": "on"})
    expected = max(minimum, minimum + add)
    assert allocation.cpu_cores == expected
    if expected > BIGINT_MAX:
        with pytest.raises(ResourceOverflow):
            allocation.check_within_bigint("x")
    else:
        allocation.check_within_bigint("x")


@given(
    st.lists(st.tuples(st.sampled_from("abcde"), st.tuples(signed, signed, signed)), unique_by=lambda p: p[0]),
    st.dictionaries(st.sampled_from("abcdef"), st.sampled_from(["off", "on", "x"])),
)
def test_required_allocation_never_below_minimum(properties, config):
    image = spec(properties=[prop(key, adds=adds) for key, adds in properties])
    allocation = required_allocation(image, config)
    assert all(a >= m for a, m in zip(allocation, image.minimum, strict=True))
