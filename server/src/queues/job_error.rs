/// Why a job attempt failed. The message becomes the job's `failedReason`, so it
/// must be useful to an operator and must never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (network, SMTP, gateway, database hiccup).
    #[error("{0}")]
    Retry(String),
    /// Retrying cannot help (bad payload, missing configuration, missing row).
    #[error("{0}")]
    Permanent(String),
}

impl JobError {
    pub fn retry(msg: impl Into<String>) -> Self {
        JobError::Retry(msg.into())
    }
    pub fn permanent(msg: impl Into<String>) -> Self {
        JobError::Permanent(msg.into())
    }
    pub fn is_permanent(&self) -> bool {
        matches!(self, JobError::Permanent(_))
    }
}

impl From<sqlx::Error> for JobError {
    fn from(err: sqlx::Error) -> Self {
        JobError::Retry(format!("database error: {err}"))
    }
}

impl From<JobError> for bullmq::Error {
    fn from(err: JobError) -> Self {
        match err {
            JobError::Retry(msg) => bullmq::Error::ProcessingError(msg),
            JobError::Permanent(msg) => bullmq::Error::Unrecoverable(msg),
        }
    }
}

/// True when this attempt is the job's last one (so side tables can record the
/// final failure instead of "retrying").
pub fn is_last_attempt(job: &bullmq::Job, err: &JobError) -> bool {
    let attempts = job.opts().attempts.unwrap_or(1).max(1);
    err.is_permanent() || job.attempts_made() + 1 >= attempts
}
