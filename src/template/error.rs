//! Errors raised while rendering a job template or building a container group request.

use crate::template::lookup::LookupError;

/// A failure to render, type or convert a job configuration. Messages never contain secret
/// values.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// The base job template is not an object with `job_configuration` and `variables`.
    #[error("invalid base job template: {0}")]
    InvalidBaseTemplate(String),
    /// A `{{ name }}` placeholder in `job_configuration` names no declared variable.
    #[error(
        "job configuration placeholder `{placeholder}` names no variable declared in the \
         base job template's `variables`; declare `{variable}` there or remove the placeholder"
    )]
    UndeclaredPlaceholder {
        placeholder: String,
        variable: String,
    },
    /// A `{{ prefect.blocks... }}` placeholder lacks the type slug or the document name.
    #[error(
        "invalid block placeholder `{0}`: expected \
         `prefect.blocks.<block-type-slug>.<block-document-name>[.keypath]`"
    )]
    InvalidBlockPlaceholder(String),
    /// The referenced block document does not exist.
    #[error("block document not found: {0}; create the block or fix the reference")]
    BlockNotFound(String),
    /// A keypath after the block name does not exist in the block's data.
    #[error("block placeholder `{placeholder}`: keypath `{keypath}` not found in the block data")]
    BlockKeypathNotFound {
        placeholder: String,
        keypath: String,
    },
    /// A block value embedded in text is an object or list, which has no inline form.
    #[error(
        "block placeholder `{0}` resolves to an object or list, which cannot be embedded in \
         text; reference a scalar field instead"
    )]
    BlockNotScalar(String),
    /// The Prefect API call behind a block or variable lookup failed.
    #[error("looking up {what} failed")]
    Lookup {
        what: String,
        #[source]
        source: LookupError,
    },
    /// A job variable has the wrong type or an invalid value.
    #[error("invalid job variable `{variable}`: got {value}, expected {expected}")]
    InvalidVariable {
        variable: String,
        value: String,
        expected: String,
    },
    /// A required job variable is missing or empty.
    #[error("job variable `{variable}` is required: {hint}")]
    MissingVariable { variable: String, hint: String },
    /// The pool's `arm_template` cannot be turned into a container group request.
    #[error("invalid arm_template: {0}")]
    InvalidArmTemplate(String),
    /// The `arm_template` uses an ARM template expression this worker does not evaluate.
    #[error(
        "unsupported ARM template expression `{0}`: only [parameters('...')], \
         [resourceGroup().location] and [uniqueString(...)] are evaluated; write the value \
         literally or use a job variable"
    )]
    UnsupportedArmExpression(String),
}
