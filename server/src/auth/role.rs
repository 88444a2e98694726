use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Student,
    Mentor,
    Admin,
    Sales,
    Superadmin,
    Recruiter,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Student,
        Role::Mentor,
        Role::Admin,
        Role::Sales,
        Role::Superadmin,
        Role::Recruiter,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Mentor => "mentor",
            Role::Admin => "admin",
            Role::Sales => "sales",
            Role::Superadmin => "superadmin",
            Role::Recruiter => "recruiter",
        }
    }

    /// Admin-level access (user management, dashboards, catalogue writes).
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin | Role::Superadmin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}
