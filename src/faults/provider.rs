//! An OpenFeature provider of a flagd flags file: flagd's own parser and targeting engine
//! (`flagd-evaluation-engine`, which open-feature-flagd's file mode uses too) over the file's
//! last good content. The file is read again by [`FlagFile::reload`], which the flags' evaluation
//! calls every second, so an edit takes effect at the next evaluation, and an edit that does not
//! parse leaves the flags as they were (with a warning).
//!
//! open-feature-flagd itself is not used: its build compiles flagd's gRPC protocol even for file
//! mode, which needs `protoc` on the machine, and a fresh machine must build with cargo alone.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use async_trait::async_trait;
use flagd_evaluation_engine::{FeatureFlag, FlagParser, Operator};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    StructValue,
    provider::{FeatureProvider, ProviderMetadata, ResolutionDetails},
};
use serde_json::Value;

/// The flags of one file, shared by the provider OpenFeature holds and the task that reloads it.
#[derive(Clone)]
pub(super) struct FlagFile {
    path: PathBuf,
    /// The file's text and its flags, as last parsed without error.
    flags: Arc<RwLock<(String, HashMap<String, FeatureFlag>)>>,
    operator: Arc<Operator>,
    metadata: ProviderMetadata,
}

impl FlagFile {
    /// Reads `path`, which must hold valid flags.
    pub(super) fn open(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|error| error.to_string())?;
        let parsed = FlagParser::parse_string(&text).map_err(|error| error.to_string())?;
        Ok(Self {
            path: path.to_owned(),
            flags: Arc::new(RwLock::new((text, parsed.flags))),
            operator: Arc::new(Operator::new()),
            metadata: ProviderMetadata::new("flagd-file"),
        })
    }

    /// Takes the file's flags again if its text changed and parses.
    pub(super) fn reload(&self) {
        let Ok(text) = std::fs::read_to_string(&self.path) else {
            return;
        };
        let mut flags = self.flags.write().unwrap_or_else(|e| e.into_inner());
        if text == flags.0 {
            return;
        }
        match FlagParser::parse_string(&text) {
            Ok(parsed) => *flags = (text, parsed.flags),
            Err(error) => {
                log::warn!(
                    "the fault flags in {} do not parse, the last good ones stay: {error}",
                    self.path.display()
                );
                // Remembered, so the warning is given once per edit.
                flags.0 = text;
            }
        }
    }

    /// flagd's resolution: a missing or disabled flag is not found; targeting chooses the
    /// variant, or the default variant when it has none or gives none.
    fn resolve<T>(
        &self,
        key: &str,
        context: &EvaluationContext,
        convert: impl Fn(&Value) -> Option<T>,
    ) -> EvaluationResult<ResolutionDetails<T>> {
        let flag = {
            let flags = self.flags.read().unwrap_or_else(|e| e.into_inner());
            flags
                .1
                .get(key)
                .filter(|flag| flag.state != "DISABLED")
                .cloned()
        };
        let flag = flag.ok_or_else(|| error(EvaluationErrorCode::FlagNotFound, key))?;
        let targeting = flag.get_targeting();
        let (variant, reason) = match targeting.as_str() {
            "{}" => (flag.default_variant.clone(), EvaluationReason::Static),
            rule => match self.operator.apply(key, rule, context) {
                Ok(Some(variant)) => (variant, EvaluationReason::TargetingMatch),
                Ok(None) => (flag.default_variant.clone(), EvaluationReason::Default),
                Err(_) => return Err(error(EvaluationErrorCode::ParseError, key)),
            },
        };
        let value = flag
            .variants
            .get(&variant)
            .and_then(convert)
            .ok_or_else(|| error(EvaluationErrorCode::TypeMismatch, key))?;
        Ok(ResolutionDetails {
            value,
            variant: Some(variant),
            reason: Some(reason),
            flag_metadata: None,
        })
    }
}

fn error(code: EvaluationErrorCode, key: &str) -> EvaluationError {
    EvaluationError {
        message: Some(format!("fault flag {key}: {code:?}")),
        code,
    }
}

#[async_trait]
impl FeatureProvider for FlagFile {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    async fn resolve_bool_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        self.resolve(key, context, Value::as_bool)
    }

    async fn resolve_int_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        self.resolve(key, context, Value::as_i64)
    }

    async fn resolve_float_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        self.resolve(key, context, Value::as_f64)
    }

    async fn resolve_string_value(
        &self,
        key: &str,
        context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        self.resolve(key, context, |value| value.as_str().map(str::to_owned))
    }

    async fn resolve_struct_value(
        &self,
        key: &str,
        _context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        Err(error(EvaluationErrorCode::TypeMismatch, key))
    }
}
