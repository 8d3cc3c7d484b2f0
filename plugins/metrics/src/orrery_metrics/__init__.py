"""Orrery metrics plugin: metrics service, percentiles, time series, alerts, forecasts.

Other plugins get the registry with ``ctx.services.get(METRICS)``.
"""

from ._alerts import FIRING_TOPIC, RESOLVED_TOPIC, AlertManager, AlertNotice
from ._anomaly import Detection, Detector, EWMADetector, MADDetector, ZScoreDetector, make_detector
from ._children import (
    FOLD_AT,
    CounterChild,
    GaugeChild,
    HistogramChild,
    SummaryChild,
    Timer,
)
from ._config import MetricsConfig, TierConfig
from ._dashboards import Dashboard, DashboardBook, Widget, render_dashboard
from ._engine import MetricsEngine
from ._export import (
    PROMETHEUS_CONTENT_TYPE,
    Exposition,
    MetricsCollector,
    export_csv,
    export_json,
    export_series_csv,
    metric_json,
    prometheus_exposition,
    prometheus_text,
)
from ._family import DEFAULT_BUCKETS, Counter, Gauge, Histogram, Metric, Summary
from ._forecast import HoltForecaster
from ._instrument import BUS_PATTERN, KERNEL_PATTERN, KernelInstruments
from ._kernel_stats import KERNEL_SERVICE, KernelSampler
from ._plugin import METRICS, METRICS_ENGINE, METRICS_EXPOSITION, METRICS_SERVICE, MetricsPlugin
from ._registry import MetricsRegistry
from ._rules import AlertRule, AnomalySpec
from ._selector import Matcher, Selector
from ._service import CSV_CONTENT_TYPE, EXPORT_FORMATS, MetricsService
from ._sketch import RELATIVE_ACCURACY, QuantileSketch
from ._stats import PERCENTILES, Stats
from ._timeseries import DEFAULT_TIERS, Point, SeriesKey, SeriesStore, Tier
from .errors import (
    CardinalityError,
    DuplicateMetric,
    InvalidLabels,
    InvalidMetricName,
    InvalidRequest,
    InvalidSelector,
    MetricsError,
    NoSeries,
    UnknownDashboard,
    UnknownMetric,
)

__all__ = [
    "Dashboard",
    "DashboardBook",
    "UnknownDashboard",
    "Widget",
    "render_dashboard",
    "BUS_PATTERN",
    "CSV_CONTENT_TYPE",
    "DEFAULT_BUCKETS",
    "DEFAULT_TIERS",
    "EXPORT_FORMATS",
    "FIRING_TOPIC",
    "FOLD_AT",
    "KERNEL_PATTERN",
    "KERNEL_SERVICE",
    "METRICS",
    "METRICS_ENGINE",
    "METRICS_EXPOSITION",
    "METRICS_SERVICE",
    "PERCENTILES",
    "PROMETHEUS_CONTENT_TYPE",
    "RELATIVE_ACCURACY",
    "RESOLVED_TOPIC",
    "AlertManager",
    "AlertNotice",
    "AlertRule",
    "AnomalySpec",
    "CardinalityError",
    "Counter",
    "CounterChild",
    "DuplicateMetric",
    "Detection",
    "Detector",
    "EWMADetector",
    "Exposition",
    "Gauge",
    "GaugeChild",
    "Histogram",
    "HistogramChild",
    "HoltForecaster",
    "InvalidLabels",
    "InvalidMetricName",
    "InvalidSelector",
    "KernelInstruments",
    "KernelSampler",
    "MADDetector",
    "Matcher",
    "Metric",
    "MetricsCollector",
    "MetricsConfig",
    "MetricsEngine",
    "MetricsError",
    "NoSeries",
    "InvalidRequest",
    "UnknownMetric",
    "MetricsPlugin",
    "MetricsRegistry",
    "MetricsService",
    "Point",
    "QuantileSketch",
    "Selector",
    "SeriesKey",
    "SeriesStore",
    "Stats",
    "Summary",
    "SummaryChild",
    "Tier",
    "TierConfig",
    "Timer",
    "ZScoreDetector",
    "export_csv",
    "export_json",
    "export_series_csv",
    "make_detector",
    "metric_json",
    "prometheus_exposition",
    "prometheus_text",
]
