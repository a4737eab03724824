"""SPU and SPU group models."""

import pytest
from pydantic import ValidationError

from ha_sc.model import (
    CustomSpuSpec,
    Endpoint,
    SpuConfig,
    SpuGroupResolution,
    SpuGroupSpec,
    SpuGroupStatus,
    SpuResolution,
    SpuSpec,
    SpuStatus,
    SpuType,
    StorageConfig,
    format_validation_error,
    validate_spu_name,
)
from ha_sc.model.ints import I32_MAX


def _spec(**overrides: object) -> SpuSpec:
    body: dict[str, object] = {
        "id": 5001,
        "public_endpoint": {"host": "localhost", "port": 9005},
        "private_endpoint": {"host": "localhost", "port": 9006},
    }
    body.update(overrides)
    return SpuSpec.model_validate(body)


def test_spu_spec_defaults() -> None:
    spec = _spec()
    assert spec.spu_type is SpuType.CUSTOM
    assert spec.rack is None
    assert str(spec.public_endpoint) == "localhost:9005"


def test_spu_spec_round_trip() -> None:
    spec = _spec(spu_type="managed", rack="r1")
    assert SpuSpec.model_validate_json(spec.model_dump_json()) == spec


def test_endpoint_str_ipv6() -> None:
    assert str(Endpoint(host="::1", port=9005)) == "[::1]:9005"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"host": "", "port": 1}, "host: String should have at least 1 character"),
        ({"host": "h", "port": 0}, "port: Input should be greater than or equal to 1"),
        ({"host": "h", "port": 65536}, "port: Input should be less than or equal to 65535"),
    ],
)
def test_endpoint_invalid(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Endpoint.model_validate(body)
    assert format_validation_error(info.value) == message


@pytest.mark.parametrize("spu_id", [-1, I32_MAX + 1])
def test_spu_id_fits_i32(spu_id: int) -> None:
    with pytest.raises(ValidationError) as info:
        _spec(id=spu_id)
    assert format_validation_error(info.value).startswith("id: Input should be")


def test_spu_type_values() -> None:
    with pytest.raises(ValidationError, match="spu_type"):
        _spec(spu_type="other")
    assert [t.value for t in SpuType] == ["managed", "custom"]


def test_spu_status() -> None:
    assert SpuStatus().resolution is SpuResolution.INIT
    assert [r.value for r in SpuResolution] == ["Init", "Online", "Offline"]
    assert SpuStatus.model_validate({"resolution": "Online"}).resolution is SpuResolution.ONLINE


def test_spu_spec_refuses_unknown_field() -> None:
    with pytest.raises(ValidationError) as info:
        _spec(name="x")
    assert format_validation_error(info.value) == "name: Extra inputs are not permitted"


def test_spu_spec_is_frozen() -> None:
    spec = _spec()
    with pytest.raises(ValidationError):
        spec.id = 1  # type: ignore[misc]


def test_custom_spu_to_spec() -> None:
    custom = CustomSpuSpec(
        id=5001,
        public_endpoint=Endpoint(host="h", port=9005),
        private_endpoint=Endpoint(host="h", port=9006),
        rack="r1",
    )
    spec = custom.to_spu_spec()
    assert spec.spu_type is SpuType.CUSTOM
    assert (spec.id, spec.rack) == (5001, "r1")
    assert spec.public_endpoint == custom.public_endpoint
    assert spec.private_endpoint == custom.private_endpoint


@pytest.mark.parametrize("name", ["custom-spu-5001", "5001", "main-0"])
def test_spu_name_valid(name: str) -> None:
    assert validate_spu_name(name) == name


@pytest.mark.parametrize("name", ["", "SPU", "spu_1", "a/b"])
def test_spu_name_invalid(name: str) -> None:
    with pytest.raises(ValueError, match="spu name"):
        validate_spu_name(name)


def test_spu_group_spec() -> None:
    spec = SpuGroupSpec.model_validate(
        {
            "replicas": 3,
            "min_id": 5001,
            "spu_config": {"rack": "r1", "storage": {"log_dir": "/data", "size": "10Gi"}},
        }
    )
    assert list(spec.spu_ids()) == [5001, 5002, 5003]
    assert spec.spu_config == SpuConfig(
        rack="r1", storage=StorageConfig(log_dir="/data", size="10Gi")
    )
    assert SpuGroupSpec(replicas=1).spu_config == SpuConfig()


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"replicas": 0}, "replicas"),
        ({"replicas": 1, "min_id": -1}, "min_id"),
        ({"replicas": 1, "spu_config": {"storage": {"size": "ten"}}}, "spu_config.storage.size"),
    ],
)
def test_spu_group_invalid(body: dict[str, object], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        SpuGroupSpec.model_validate(body)
    assert format_validation_error(info.value).startswith(f"{path}: ")


def test_spu_group_ids_fit_i32() -> None:
    with pytest.raises(ValidationError, match="exceeds the largest SPU id"):
        SpuGroupSpec(replicas=2, min_id=I32_MAX)


def test_spu_group_status() -> None:
    status = SpuGroupStatus()
    assert (status.resolution, status.reason) == (SpuGroupResolution.INIT, None)
    assert [r.value for r in SpuGroupResolution] == ["Init", "Invalid", "Reserved"]
