//! Per-process caches of the external integrations (discovery documents, signing
//! keys, access tokens, language lists), shared through `AppState::external`.

use super::code_runs::LanguageCache;
use super::google::calendar::AccessTokenCache;
use super::google::oidc::OidcCache;

#[derive(Default)]
pub struct ExternalCaches {
    pub oidc: OidcCache,
    pub calendar_token: AccessTokenCache,
    pub judge0_languages: LanguageCache,
}
