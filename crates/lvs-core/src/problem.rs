//! Problems found in user input: which object, which field, why — the unit of every error
//! message, status condition and Event the project produces about user input.

use std::fmt;

use crate::object::ObjectKey;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The object (or the object pair) is rejected.
    Error,
    /// The object works, but probably not as intended.
    Warning,
}

/// One problem with one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The object at fault.
    pub object: ObjectKey,
    /// Field path inside the object, e.g. `spec.healthCheck.timeoutSeconds`; empty for the whole
    /// object.
    pub field: String,
    /// Machine-readable reason (a condition reason from `lvs_api::conditions::reasons`).
    pub reason: &'static str,
    /// What is wrong, for humans.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Problem {
    /// An error on `field` of `object`.
    pub fn error(
        object: &ObjectKey,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            object: object.clone(),
            field: field.into(),
            reason,
            message: message.into(),
            severity: Severity::Error,
        }
    }

    /// A warning on `field` of `object`.
    pub fn warning(
        object: &ObjectKey,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(object, field, reason, message)
        }
    }

    /// The line users see: the file the object came from, the object, the field, what is wrong,
    /// and the condition reason the controller reports, e.g. `web.yaml: VirtualServer default/web:
    /// spec.address: … [AddressNotInPool]`.
    pub fn line(&self, source: &str) -> String {
        format!("{source}: {self} [{}]", self.reason)
    }

    /// `field: message`, or just the message for whole-object problems.
    pub fn describe(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        write!(formatter, "{}: {severity}{}", self.object, self.describe())
    }
}

/// Collects problems about one object while validating it.
#[derive(Debug)]
pub struct ProblemSink<'a> {
    object: &'a ObjectKey,
    /// The problems found so far.
    pub problems: Vec<Problem>,
}

impl<'a> ProblemSink<'a> {
    /// An empty sink for `object`.
    pub fn new(object: &'a ObjectKey) -> Self {
        Self {
            object,
            problems: Vec::new(),
        }
    }

    /// Records an invalid field.
    pub fn invalid(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::error(
            self.object,
            field,
            lvs_api::conditions::reasons::INVALID,
            message,
        ));
    }

    /// Records a warning about a field.
    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::warning(
            self.object,
            field,
            lvs_api::conditions::reasons::INVALID,
            message,
        ));
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|problem| problem.severity == Severity::Error)
    }
}
