//! [`SpanFilter`]: the span layer's filter, as cheap as its directives allow.
//!
//! `EnvFilter` tracks every enabled span in a shared `RwLock`ed map, read on each enter, exit
//! and close, so that span-field directives (`[span{field=value}]`) can match what is inside
//! a span. Directives of targets and levels only (the default `info`, `secrets_sdk=debug,warn`)
//! need none of that: [`Targets`] decides them from the callsite alone and has no per-span
//! hooks. The directives parse as `Targets` when they can and as `EnvFilter` otherwise; both
//! read the same syntax and decide the same way (the test below compares them).

use tracing::span;
use tracing::{Metadata, subscriber::Interest};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Filter};

/// The span layer's filter: [`Targets`] for directives of targets and levels, `EnvFilter`
/// for span and field directives.
#[derive(Debug)]
pub(super) enum SpanFilter {
    Targets(Targets),
    Env(Box<EnvFilter>),
}

impl SpanFilter {
    /// The filter of `directives` (already validated as `EnvFilter` directives), or of the
    /// default when they do not parse.
    pub(super) fn new(directives: &str) -> Self {
        if !directives.contains(['[', '{'])
            && !directives.trim().is_empty()
            && let Ok(targets) = directives.parse::<Targets>()
        {
            return Self::Targets(targets);
        }
        Self::Env(Box::new(
            EnvFilter::try_new(directives)
                .unwrap_or_else(|_| EnvFilter::new(super::DEFAULT_FILTER)),
        ))
    }
}

impl<S> Filter<S> for SpanFilter
where
    EnvFilter: Filter<S>,
    Targets: Filter<S>,
{
    fn enabled(&self, meta: &Metadata<'_>, cx: &Context<'_, S>) -> bool {
        match self {
            Self::Targets(f) => Filter::enabled(f, meta, cx),
            Self::Env(f) => Filter::enabled(&**f, meta, cx),
        }
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        match self {
            Self::Targets(f) => Filter::<S>::callsite_enabled(f, meta),
            Self::Env(f) => Filter::<S>::callsite_enabled(&**f, meta),
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        match self {
            Self::Targets(f) => Filter::<S>::max_level_hint(f),
            Self::Env(f) => Filter::<S>::max_level_hint(&**f),
        }
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(f) = self {
            Filter::on_new_span(&**f, attrs, id, cx);
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        if let Self::Env(f) = self {
            Filter::on_record(&**f, id, values, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(f) = self {
            Filter::on_enter(&**f, id, cx);
        }
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        if let Self::Env(f) = self {
            Filter::on_exit(&**f, id, cx);
        }
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        if let Self::Env(f) = self {
            Filter::on_close(&**f, id, cx);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Level;
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Records the name of every span it sees created.
    struct Seen(Arc<Mutex<Vec<String>>>);

    impl<S: tracing::Subscriber> Layer<S> for Seen {
        fn on_new_span(&self, attrs: &span::Attributes<'_>, _: &span::Id, _: Context<'_, S>) {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(attrs.metadata().name().to_owned());
        }
    }

    /// Spans of three targets at every level, one span nested in another.
    fn emit() {
        macro_rules! at_every_level {
            ($target:literal) => {
                let _a = tracing::span!(target: $target, Level::ERROR, concat!($target, ":error")).entered();
                drop(tracing::span!(target: $target, Level::WARN, concat!($target, ":warn")));
                drop(tracing::span!(target: $target, Level::INFO, concat!($target, ":info")));
                drop(tracing::span!(target: $target, Level::DEBUG, concat!($target, ":debug")));
                drop(tracing::span!(target: $target, Level::TRACE, concat!($target, ":trace")));
            };
        }
        at_every_level!("secrets_sdk");
        at_every_level!("secrets_sdk::client");
        at_every_level!("secret_pep::pep");
        at_every_level!("other_crate");
    }

    fn seen_with<F>(filter: F) -> Vec<String>
    where
        F: Filter<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber =
            tracing_subscriber::registry().with(Seen(Arc::clone(&seen)).with_filter(filter));
        tracing::subscriber::with_default(subscriber, emit);
        seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// For target and level directives the fast filter is chosen and lets through exactly the
    /// spans `EnvFilter` does; span directives keep `EnvFilter`.
    #[test]
    fn targets_decide_as_env_filter_does() {
        for directives in [
            "info",
            "INFO",
            "debug",
            "trace",
            "off",
            "warn,secrets_sdk=debug",
            "secrets_sdk::client=trace,secret_pep=off,info",
            "other_crate=error",
            "secret_pep",
        ] {
            let filter = SpanFilter::new(directives);
            assert!(
                matches!(filter, SpanFilter::Targets(_)),
                "{directives}: {filter:?}"
            );
            let fast = seen_with(filter);
            let env = seen_with(EnvFilter::new(directives));
            assert_eq!(fast, env, "{directives}");
            if directives != "off" && directives != "other_crate=error" {
                assert!(!fast.is_empty(), "{directives}: something passes");
            }
        }
        for directives in [
            "[get_credentials]=debug",
            "info,[secret_resolve{cache=miss}]=trace",
        ] {
            assert!(
                matches!(SpanFilter::new(directives), SpanFilter::Env(_)),
                "{directives}"
            );
        }
        assert!(matches!(SpanFilter::new(""), SpanFilter::Env(_)));
    }
}
