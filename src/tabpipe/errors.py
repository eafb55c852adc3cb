"""The tabpipe exception tree.

Every error tabpipe raises on purpose derives from :class:`TabpipeError`.
Each area has its own family, and each family also subclasses the built-in
exception a caller would naturally catch (``ValueError``, ``LookupError``),
so ``except ValueError`` keeps working::

    TabpipeError
    ├── ConfigError (ValueError)         the pipeline spec or a setting is invalid
    ├── DataError (ValueError)           data cannot be read or does not fit its use
    │   ├── SourceError                  a source cannot be read (file, database, API)
    │   └── SchemaError                  a column is missing, empty or of the wrong kind
    ├── TrainingError (RuntimeError)     no model could be trained
    ├── PackagingError (RuntimeError)    a bundle cannot be built or exported
    ├── BundleError (ValueError)         a bundle on disk is corrupt or tampered with
    ├── NotFoundError (LookupError)      a model, version, alias, snapshot or run is unknown
    ├── RequestError (ValueError)        a prediction request does not fit the signature
    │   ├── PayloadTooLargeError         too many rows or bytes in one request
    │   └── FeedbackError                a label does not fit the model (type, class, id)
    ├── StoreError (RuntimeError)        the metadata store or artifact store failed
    ├── EngineError (RuntimeError)       the compute engine (a Ray cluster) cannot be used
    └── MonitoringError (RuntimeError)   monitoring or retraining cannot proceed

Messages name the object at fault, the bad value and how to fix it.
"""

from __future__ import annotations


class TabpipeError(Exception):
    """Root of every error tabpipe raises on purpose."""


class TabpipeWarning(UserWarning):
    """Root of every warning tabpipe emits."""


class ConfigError(TabpipeError, ValueError):
    """The pipeline spec or a setting is invalid."""


class DataError(TabpipeError, ValueError):
    """Data cannot be read or does not fit its use."""


class SourceError(DataError):
    """A source (file, database, API, stream) cannot be read."""


class SchemaError(DataError):
    """A column is missing, empty or of the wrong kind."""


class TrainingError(TabpipeError, RuntimeError):
    """No model could be trained."""


class PackagingError(TabpipeError, RuntimeError):
    """A bundle cannot be built or exported."""


class BundleError(TabpipeError, ValueError):
    """A bundle on disk is corrupt, tampered with or of an unknown format."""


class NotFoundError(TabpipeError, LookupError):
    """A model, version, alias, snapshot or run is unknown."""


class RequestError(TabpipeError, ValueError):
    """A prediction request does not fit the model's signature.

    ``field`` names the offending column or request field when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PayloadTooLargeError(RequestError):
    """A request carries more rows or bytes than the server accepts."""


class StoreError(TabpipeError, RuntimeError):
    """The metadata store or the artifact store failed."""


class EngineError(TabpipeError, RuntimeError):
    """The compute engine cannot be used: the Ray cluster is unreachable or failed."""


class FeedbackError(RequestError):
    """A label does not fit the model: wrong type, unknown class, no id or key."""


class MonitoringError(TabpipeError, RuntimeError):
    """Monitoring or retraining cannot proceed (no log, no reference, no labels)."""
