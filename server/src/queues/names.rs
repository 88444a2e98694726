use std::fmt;
use std::str::FromStr;

/// The five queues; names are the Node app's so its producers and dashboards still match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueName {
    Email,
    Database,
    Cleanup,
    Kpi,
    ResumeAnalysis,
}

impl QueueName {
    pub const ALL: [QueueName; 5] = [
        QueueName::Email,
        QueueName::Database,
        QueueName::Cleanup,
        QueueName::Kpi,
        QueueName::ResumeAnalysis,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Email => "emailQueue",
            QueueName::Database => "databaseQueue",
            QueueName::Cleanup => "cleanupQueue",
            QueueName::Kpi => "kpiQueue",
            QueueName::ResumeAnalysis => "resumeAnalysisQueue",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            QueueName::Email => 0,
            QueueName::Database => 1,
            QueueName::Cleanup => 2,
            QueueName::Kpi => 3,
            QueueName::ResumeAnalysis => 4,
        }
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for QueueName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        QueueName::ALL
            .into_iter()
            .find(|q| q.as_str() == s)
            .ok_or_else(|| format!("unknown queue {s:?}"))
    }
}
