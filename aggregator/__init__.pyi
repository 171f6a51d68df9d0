"""Type stub of :mod:`aggregator`: the public API, imported lazily at run time (see ``__init__.py``).

This file is the one list of public names: ``__init__.py`` reads it with ``lazy_loader.attach_stub``,
and type checkers read it instead of ``__init__.py``.
"""

from .batch import BatchProgress as BatchProgress
from .batch import BatchRow as BatchRow
from .batch import BatchRun as BatchRun
from .batch import BatchSpec as BatchSpec
from .batch import BatchStore as BatchStore
from .batch import BatchValidationError as BatchValidationError
from .batch import InMemoryBatchStore as InMemoryBatchStore
from .batch import RowResult as RowResult
from .batch import RowState as RowState
from .batch import SqliteBatchStore as SqliteBatchStore
from .batch import validate_file as validate_file
from .clock import Clock as Clock
from .clock import ScaledClock as ScaledClock
from .clock import SystemClock as SystemClock
from .config import ProviderSettings as ProviderSettings
from .config import Settings as Settings
from .config import load_settings as load_settings
from .contract import Capabilities as Capabilities
from .contract import Checkpoint as Checkpoint
from .contract import CostModel as CostModel
from .contract import Failed as Failed
from .contract import JobRef as JobRef
from .contract import JobState as JobState
from .contract import Limits as Limits
from .contract import Page as Page
from .contract import Pending as Pending
from .contract import PollPolicy as PollPolicy
from .contract import ProviderAdapter as ProviderAdapter
from .contract import RateLimitSpec as RateLimitSpec
from .contract import Ready as Ready
from .coordination import Coordinator as Coordinator
from .coordination import InProcessCoordinator as InProcessCoordinator
from .coordination import PostgresCoordinator as PostgresCoordinator
from .core import Aggregator as Aggregator
from .errors import AggregatorError as AggregatorError
from .errors import AuthError as AuthError
from .errors import BudgetExceededError as BudgetExceededError
from .errors import CircuitOpenError as CircuitOpenError
from .errors import ConfigError as ConfigError
from .errors import CoordinationUnavailableError as CoordinationUnavailableError
from .errors import DatabaseError as DatabaseError
from .errors import DatabaseSchemaError as DatabaseSchemaError
from .errors import DatabaseUnavailableError as DatabaseUnavailableError
from .errors import DeadlineExceededError as DeadlineExceededError
from .errors import InsufficientCreditsError as InsufficientCreditsError
from .errors import InvalidRequestError as InvalidRequestError
from .errors import JobFailedError as JobFailedError
from .errors import ProviderConnectionError as ProviderConnectionError
from .errors import ProviderError as ProviderError
from .errors import ProviderHTTPError as ProviderHTTPError
from .errors import ProviderProtocolError as ProviderProtocolError
from .errors import ProviderServerError as ProviderServerError
from .errors import ProviderTimeoutError as ProviderTimeoutError
from .errors import RateLimitedError as RateLimitedError
from .errors import SearchFailedError as SearchFailedError
from .events import Event as Event
from .events import HitsEvent as HitsEvent
from .events import OutcomeEvent as OutcomeEvent
from .events import ProgressEvent as ProgressEvent
from .events import RecordsEvent as RecordsEvent
from .events import ReportEvent as ReportEvent
from .events import RunStartedEvent as RunStartedEvent
from .jobstore import InMemoryJobStore as InMemoryJobStore
from .jobstore import JobRecord as JobRecord
from .jobstore import JobStore as JobStore
from .merge import Resolver as Resolver
from .merge import merge_hits as merge_hits
from .models import CacheInfo as CacheInfo
from .models import Company as Company
from .models import Criterion as Criterion
from .models import ErrorInfo as ErrorInfo
from .models import Evidence as Evidence
from .models import FieldValue as FieldValue
from .models import FieldValues as FieldValues
from .models import FilterCapabilities as FilterCapabilities
from .models import FilterField as FilterField
from .models import Hit as Hit
from .models import MergedRecord as MergedRecord
from .models import Person as Person
from .models import PersonIdentity as PersonIdentity
from .models import ProviderOutcome as ProviderOutcome
from .models import SearchReport as SearchReport
from .models import SearchRequest as SearchRequest
from .pipelines import Policy as Policy

__version__: str
__all__: list[str]
