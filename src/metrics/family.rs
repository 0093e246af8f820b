//! How metrics are made: [`Builder`] names and registers each one in the connector's
//! registry; [`CounterFamily`] is a counter by a [`LabelSet`] (a series per value, all
//! created at zero, fed only with values of that set); [`EnumGauge`] is prometheus_client's
//! `Enum` (one gauge per value of a [`Label`], the current one at 1).

use std::marker::PhantomData;
use std::sync::Mutex;

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

use super::labels::{Label, LabelSet};
use super::MetricsError;

/// Names metrics `<namespace>_<subsystem>_<name>` and registers them.
pub(super) struct Builder<'a> {
    pub(super) registry: &'a Registry,
    pub(super) namespace: &'a str,
    pub(super) subsystem: &'a str,
}

impl Builder<'_> {
    fn opts(&self, name: &str, help: &str) -> Opts {
        Opts::new(name, help)
            .namespace(self.namespace)
            .subsystem(self.subsystem)
    }

    fn register<C>(&self, collector: C) -> Result<C, MetricsError>
    where
        C: prometheus::core::Collector + Clone + 'static,
    {
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    pub(super) fn counter(&self, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
        self.register(IntCounter::with_opts(self.opts(name, help))?)
    }

    pub(super) fn int_gauge(&self, name: &str, help: &str) -> Result<IntGauge, MetricsError> {
        self.register(IntGauge::with_opts(self.opts(name, help))?)
    }

    pub(super) fn gauge(&self, name: &str, help: &str) -> Result<Gauge, MetricsError> {
        self.register(Gauge::with_opts(self.opts(name, help))?)
    }

    pub(super) fn histogram(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, MetricsError> {
        let opts = HistogramOpts::new(name, help)
            .namespace(self.namespace)
            .subsystem(self.subsystem)
            .buckets(buckets.to_vec());
        self.register(Histogram::with_opts(opts)?)
    }

    /// A gauge vector with free label values (the connector's own configuration only).
    pub(super) fn gauge_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
    ) -> Result<IntGaugeVec, MetricsError> {
        self.register(IntGaugeVec::new(self.opts(name, help), labels)?)
    }

    pub(super) fn counter_family<L: LabelSet>(
        &self,
        name: &str,
        help: &str,
    ) -> Result<CounterFamily<L>, MetricsError> {
        let vec = IntCounterVec::new(self.opts(name, help), L::NAMES)?;
        for labels in L::all() {
            vec.get_metric_with_label_values(&labels.values())?;
        }
        Ok(CounterFamily {
            vec: self.register(vec)?,
            labels: PhantomData,
        })
    }

    /// An [`EnumGauge`] whose label is named after the metric's full name, as
    /// prometheus_client names an `Enum`'s label; `initial` at 1.
    pub(super) fn enum_gauge<L: Label>(
        &self,
        name: &str,
        help: &str,
        initial: L,
    ) -> Result<EnumGauge<L>, MetricsError> {
        let opts = self.opts(name, help);
        let label = opts.fq_name();
        let vec = IntGaugeVec::new(opts, &[label.as_str()])?;
        for value in L::ALL {
            vec.get_metric_with_label_values(&[value.as_str()])?
                .set(i64::from(*value == initial));
        }
        Ok(EnumGauge {
            vec: self.register(vec)?,
            lock: Mutex::new(()),
            labels: PhantomData,
        })
    }
}

/// A counter with one series per value of `L`.
pub struct CounterFamily<L: LabelSet> {
    vec: IntCounterVec,
    labels: PhantomData<fn(L)>,
}

impl<L: LabelSet> CounterFamily<L> {
    /// Adds one to the series of `labels`.
    pub fn inc(&self, labels: L) {
        // Cannot fail: the family was made with `L::NAMES`, and `values` has one value per name.
        match self.vec.get_metric_with_label_values(&labels.values()) {
            Ok(counter) => counter.inc(),
            Err(error) => tracing::error!(%error, "cannot count"),
        }
    }
}

/// prometheus_client's `Enum`: one gauge per value of `L`, the current value at 1.
pub struct EnumGauge<L: Label> {
    vec: IntGaugeVec,
    /// Serialises [`EnumGauge::set`], so exactly one value is at 1.
    lock: Mutex<()>,
    labels: PhantomData<fn(L)>,
}

impl<L: Label> EnumGauge<L> {
    /// Sets `current` at 1 and every other value at 0.
    pub fn set(&self, current: L) {
        let _serialised = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        for value in L::ALL {
            match self.vec.get_metric_with_label_values(&[value.as_str()]) {
                Ok(gauge) => gauge.set(i64::from(*value == current)),
                Err(error) => tracing::error!(%error, "cannot set the state"),
            }
        }
    }
}
