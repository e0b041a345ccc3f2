"""botocore's model ``Loader``, without the scan of every service directory when a client is made.

botocore's ``Loader.load_service_model`` first lists every service it knows
(``list_available_services``: a ``listdir`` of each of the ~420 directories under
``botocore/data`` and a ``stat`` per API version) only to check that the requested service is
among them. It does it once per model type (``service-2``, ``endpoint-rule-set-1``), so the
first client of a session pays about 22 ms of a cold start on this machine for it.
``KnownServiceLoader`` looks in the requested service's own directory first and keeps
botocore's full check for the names it cannot find there, so every error is botocore's own.
The same change is proposed upstream (boto/botocore#3687, open).

Imported by ``core.aws`` when the process's first AWS client is made (it imports botocore).
"""

from __future__ import annotations

import os
import re
from typing import Any

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader, instance_cache

#: A botocore service directory name ("sqs", "bedrock-runtime"): nothing that could name a path.
_SERVICE_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


class KnownServiceLoader(Loader):  # type: ignore[misc]  # subclassing Any: botocore is untyped
    """A botocore ``Loader`` whose ``load_service_model`` skips the full service listing on success.

    Same search paths, caching and results as botocore's ``Loader``; see the module docstring.
    """

    @instance_cache  # type: ignore[untyped-decorator]  # botocore's own cache, untyped like botocore
    def load_service_model(self, service_name: str, type_name: str, api_version: str | None = None) -> Any:
        """The model ``type_name`` (``"service-2"``, ``"paginators-1"``...) of ``service_name``, as a dict.

        Args:
            service_name: A botocore service name (``"sqs"``).
            type_name: The model type.
            api_version: An API version (``"2012-11-05"``); the latest one when ``None``.

        Returns:
            The model with its extras applied, exactly as ``botocore.loaders.Loader`` returns it.

        Raises:
            botocore.exceptions.UnknownServiceError: ``service_name`` has no model of this type
                (raised by botocore's own check, which lists the known services).
            botocore.exceptions.DataNotFoundError: ``api_version`` has no model of this type.

        An ``api_version`` given, or a name that is no service directory's, takes botocore's own path.
        """
        if api_version is not None or not _SERVICE_NAME.match(service_name):
            return super().load_service_model(service_name, type_name, api_version)
        try:
            api_version = self.determine_latest_version(service_name, type_name)
        except DataNotFoundError:  # not in its own directory: botocore's check names the known services
            return super().load_service_model(service_name, type_name)
        model = self.load_data(os.path.join(service_name, api_version, type_name))
        self._extras_processor.process(model, self._find_extras(service_name, type_name, api_version))
        return model


def create_loader(search_path_string: str | None = None) -> KnownServiceLoader:
    """A ``KnownServiceLoader`` searching ``AWS_DATA_PATH``'s directories too, as ``botocore.loaders.create_loader``.

    Args:
        search_path_string: The session's ``data_path`` (``AWS_DATA_PATH``): directories
            separated by ``os.pathsep``, searched before botocore's own data.
    """
    if search_path_string is None:
        return KnownServiceLoader()
    paths = [os.path.expanduser(os.path.expandvars(p)) for p in search_path_string.split(os.pathsep)]
    return KnownServiceLoader(extra_search_paths=paths)
