"""core.botocore_loader: botocore's models and errors, without listing every service on success."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import DataNotFoundError, UnknownServiceError
from botocore.loaders import Loader

from core.botocore_loader import KnownServiceLoader, create_loader


class NoListingLoader(KnownServiceLoader):
    """Counts botocore's full listings of the services (what the fast path exists to skip)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.listings = 0

    def list_available_services(self, type_name):
        self.listings += 1
        return super().list_available_services(type_name)


@pytest.mark.parametrize(("service", "type_name"), [
    ("sqs", "service-2"),
    ("secretsmanager", "endpoint-rule-set-1"),
    ("bedrock-runtime", "waiters-2"),
    ("ec2", "paginators-1"),  # has sdk extras, applied on top
])
def test_models_are_botocores_own_without_listing_the_services(service, type_name):
    loader = NoListingLoader()

    model = loader.load_service_model(service, type_name)

    assert model == Loader().load_service_model(service, type_name)
    assert loader.listings == 0


def test_sdk_extras_are_applied():
    model = KnownServiceLoader().load_service_model("ec2", "paginators-1")
    extras = Loader().load_data("ec2/2016-11-15/paginators-1.sdk-extras")["merge"]["pagination"]

    for operation, extra in extras.items():
        assert extra.items() <= model["pagination"][operation].items()


def test_a_model_is_loaded_once_per_loader():
    loader = KnownServiceLoader()

    assert loader.load_service_model("sqs", "service-2") is loader.load_service_model("sqs", "service-2")


@pytest.mark.parametrize("name", ["no-such-service", "SQS", "sqs/../ssm", "../data", "sqs/2012-11-05", ""])
def test_unknown_and_path_like_names_get_botocores_error(name):
    with pytest.raises(UnknownServiceError) as ours:
        KnownServiceLoader().load_service_model(name, "service-2")
    with pytest.raises(UnknownServiceError) as botocores:
        Loader().load_service_model(name, "service-2")

    assert str(ours.value) == str(botocores.value)
    assert "sqs" in ours.value.kwargs["known_service_names"]


def test_a_service_without_that_model_type_gets_botocores_error():
    # SQS has no waiters: botocore reports it as an unknown service for waiters-2.
    with pytest.raises(DataNotFoundError) as ours:
        KnownServiceLoader().load_service_model("sqs", "waiters-2")
    with pytest.raises(DataNotFoundError) as botocores:
        Loader().load_service_model("sqs", "waiters-2")

    assert type(ours.value) is type(botocores.value)
    assert str(ours.value) == str(botocores.value)


def test_an_api_version_takes_botocores_path():
    loader = NoListingLoader()

    assert loader.load_service_model("sqs", "service-2", "2012-11-05") == Loader().load_service_model(
        "sqs", "service-2", "2012-11-05")
    with pytest.raises(DataNotFoundError):
        loader.load_service_model("sqs", "service-2", "1999-01-01")


def test_aws_data_path_models_are_found_first(tmp_path, monkeypatch):
    # A customer model directory (AWS_DATA_PATH) may add a service or shadow botocore's version of one.
    custom = tmp_path / "models"
    model = {"version": "2.0", "metadata": {"apiVersion": "2030-01-01", "endpointPrefix": "agentfake",
                                              "protocol": "json", "serviceId": "AgentFake",
                                              "signatureVersion": "v4"},
             "operations": {}, "shapes": {}}
    for service in ("agentfake", "sqs"):
        (custom / service / "2030-01-01").mkdir(parents=True)
        (custom / service / "2030-01-01" / "service-2.json").write_text(json.dumps(model))

    loader = create_loader(f"{tmp_path / 'nowhere'}:{custom}")

    assert loader.load_service_model("agentfake", "service-2") == model
    assert loader.load_service_model("sqs", "service-2")["metadata"]["apiVersion"] == "2030-01-01"
    assert create_loader().search_paths == Loader().search_paths
