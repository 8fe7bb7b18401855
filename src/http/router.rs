//! The route table: every route of the API with its method and path pattern, in one
//! list that dispatch, the OpenAPI document and the role matrix test all read.
//! Paths match with or without a trailing slash; HEAD matches the GET routes.

use warp::http::Method;

use crate::auth::Rule;

/// What a route does; `dispatch` has one arm per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
    /// `GET /api/v1/config-warnings/`.
    ConfigWarnings,
    /// `GET /metrics`.
    Metrics,
    /// Create a wallet.
    AccountCreate,
    /// List and search wallets.
    AccountList,
    /// One wallet.
    AccountGet,
    /// Freeze a wallet.
    AccountFreeze,
    /// Unfreeze a wallet.
    AccountUnfreeze,
    /// Cash in.
    AccountDeposit,
    /// Cash out.
    AccountWithdraw,
    /// A wallet's transfers.
    AccountStatement,
    /// The system accounts.
    SystemAccounts,
    /// Create a P2P transfer.
    TransferCreate,
    /// List transfers.
    TransferList,
    /// One transfer with its postings.
    TransferGet,
    /// Resolve an IN_DOUBT transfer.
    TransferResolve,
    /// Approve a cash movement above the approval threshold.
    TransferApprove,
    /// Reject a cash movement above the approval threshold.
    TransferReject,
    /// Request an adjustment.
    AdjustmentCreate,
    /// List adjustments.
    AdjustmentList,
    /// One adjustment.
    AdjustmentGet,
    /// Approve (and post) an adjustment.
    AdjustmentApprove,
    /// Reject an adjustment.
    AdjustmentReject,
    /// This API's OpenAPI document.
    OpenApi,
    /// Sign in.
    Login,
    /// Sign out.
    Logout,
    /// The signed-in user.
    Me,
    /// Change one's own password.
    OwnPassword,
    /// List users.
    UserList,
    /// Create a user.
    UserCreate,
    /// Change a user's role.
    UserRole,
    /// Disable a user.
    UserDisable,
    /// Enable a user.
    UserEnable,
    /// Reset a user's password.
    UserPassword,
    /// The audit log.
    AuditList,
    /// Verify the audit chain.
    AuditVerify,
    /// Upload a bulk file.
    BulkUpload,
    /// List jobs.
    JobList,
    /// One job.
    JobGet,
    /// A job's items.
    JobItems,
    /// A job's validation report.
    JobReport,
    /// `results.csv`.
    JobResults,
    /// `errors.csv`.
    JobErrors,
    /// Progress events.
    JobEvents,
    /// Approve a job.
    JobApprove,
    /// Reject a job.
    JobReject,
    /// Pause a job.
    JobPause,
    /// Resume a job.
    JobResume,
    /// Cancel a job.
    JobCancel,
    /// Retry a job's retryable failures.
    JobRetry,
    /// Resolve an IN_DOUBT item.
    JobItemResolve,
    /// The admin page (`GET /`).
    Page,
    /// A file of the admin page (`GET /static/{file}`).
    Asset,
}

/// One route.
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Full path pattern with `{param}` segments, written with its trailing slash.
    pub pattern: &'static str,
    /// The handler.
    pub handler: Handler,
    /// Who may call it (SPEC §7).
    pub rule: Rule,
}

const fn route(method: &'static str, pattern: &'static str, handler: Handler, rule: Rule) -> Route {
    Route { method, pattern, handler, rule }
}

/// Every route.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Handler::Healthz, Rule::Public),
    route("GET", "/readyz", Handler::Readyz, Rule::Public),
    route("GET", "/metrics", Handler::Metrics, Rule::Public),
    route("GET", "/", Handler::Page, Rule::Public),
    route("GET", "/static/{file}", Handler::Asset, Rule::Public),
    route("GET", "/api/v1/openapi.json", Handler::OpenApi, Rule::Public),
    route("POST", "/api/v1/auth/login/", Handler::Login, Rule::Public),
    route("POST", "/api/v1/auth/logout/", Handler::Logout, Rule::Signed),
    route("GET", "/api/v1/auth/me/", Handler::Me, Rule::Signed),
    route("POST", "/api/v1/auth/password/", Handler::OwnPassword, Rule::Signed),
    route("POST", "/api/v1/accounts/", Handler::AccountCreate, Rule::Maker),
    route("GET", "/api/v1/accounts/", Handler::AccountList, Rule::Signed),
    route("GET", "/api/v1/accounts/{msisdn}/", Handler::AccountGet, Rule::Signed),
    route("POST", "/api/v1/accounts/{msisdn}/freeze/", Handler::AccountFreeze, Rule::Checker),
    route("POST", "/api/v1/accounts/{msisdn}/unfreeze/", Handler::AccountUnfreeze, Rule::Checker),
    route("POST", "/api/v1/accounts/{msisdn}/deposit/", Handler::AccountDeposit, Rule::Maker),
    route("POST", "/api/v1/accounts/{msisdn}/withdraw/", Handler::AccountWithdraw, Rule::Maker),
    route("GET", "/api/v1/accounts/{msisdn}/transfers/", Handler::AccountStatement, Rule::Signed),
    route("GET", "/api/v1/system-accounts/", Handler::SystemAccounts, Rule::Signed),
    route("GET", "/api/v1/config-warnings/", Handler::ConfigWarnings, Rule::Signed),
    route("POST", "/api/v1/transfers/", Handler::TransferCreate, Rule::Maker),
    route("GET", "/api/v1/transfers/", Handler::TransferList, Rule::Signed),
    route("GET", "/api/v1/transfers/{id}/", Handler::TransferGet, Rule::Signed),
    route("POST", "/api/v1/transfers/{id}/resolve/", Handler::TransferResolve, Rule::Checker),
    route("POST", "/api/v1/transfers/{id}/approve/", Handler::TransferApprove, Rule::Checker),
    route("POST", "/api/v1/transfers/{id}/reject/", Handler::TransferReject, Rule::Checker),
    route("POST", "/api/v1/adjustments/", Handler::AdjustmentCreate, Rule::Maker),
    route("GET", "/api/v1/adjustments/", Handler::AdjustmentList, Rule::Signed),
    route("GET", "/api/v1/adjustments/{id}/", Handler::AdjustmentGet, Rule::Signed),
    route("POST", "/api/v1/adjustments/{id}/approve/", Handler::AdjustmentApprove, Rule::Checker),
    route("POST", "/api/v1/adjustments/{id}/reject/", Handler::AdjustmentReject, Rule::Checker),
    route("GET", "/api/v1/users/", Handler::UserList, Rule::Admin),
    route("POST", "/api/v1/users/", Handler::UserCreate, Rule::Admin),
    route("POST", "/api/v1/users/{username}/role/", Handler::UserRole, Rule::Admin),
    route("POST", "/api/v1/users/{username}/disable/", Handler::UserDisable, Rule::Admin),
    route("POST", "/api/v1/users/{username}/enable/", Handler::UserEnable, Rule::Admin),
    route("POST", "/api/v1/users/{username}/password/", Handler::UserPassword, Rule::Admin),
    route("GET", "/api/v1/audit/", Handler::AuditList, Rule::Admin),
    route("GET", "/api/v1/audit/verify/", Handler::AuditVerify, Rule::Admin),
    route("POST", "/api/v1/bulk/upload/", Handler::BulkUpload, Rule::Maker),
    route("GET", "/api/v1/bulk/jobs/", Handler::JobList, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/", Handler::JobGet, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/items/", Handler::JobItems, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/report/", Handler::JobReport, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/results.csv", Handler::JobResults, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/errors.csv", Handler::JobErrors, Rule::Signed),
    route("GET", "/api/v1/bulk/jobs/{id}/events", Handler::JobEvents, Rule::Signed),
    route("POST", "/api/v1/bulk/jobs/{id}/approve/", Handler::JobApprove, Rule::Checker),
    route("POST", "/api/v1/bulk/jobs/{id}/reject/", Handler::JobReject, Rule::Checker),
    route("POST", "/api/v1/bulk/jobs/{id}/pause/", Handler::JobPause, Rule::Operator),
    route("POST", "/api/v1/bulk/jobs/{id}/resume/", Handler::JobResume, Rule::Operator),
    route("POST", "/api/v1/bulk/jobs/{id}/cancel/", Handler::JobCancel, Rule::Operator),
    route("POST", "/api/v1/bulk/jobs/{id}/retry/", Handler::JobRetry, Rule::Checker),
    route("POST", "/api/v1/bulk/jobs/{id}/items/{line}/resolve/", Handler::JobItemResolve, Rule::Checker),
];

/// The outcome of matching a request path.
pub enum Matched {
    /// A route and its path parameters, in pattern order.
    Found(&'static Route, Vec<String>),
    /// The path exists with other methods (405 with `Allow`).
    WrongMethod(Vec<&'static str>),
    /// No such path.
    NotFound,
}

fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

fn match_pattern(pattern: &str, path: &[&str]) -> Option<Vec<String>> {
    let pat = segments(pattern);
    if pat.len() != path.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in pat.iter().zip(path) {
        if p.starts_with('{') {
            params.push(percent_decode(s)?);
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// Decodes `%XX` escapes in a path segment; invalid UTF-8 does not match.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Finds the route for `method` and `path`. An empty segment (`//`) never matches.
pub fn find(method: &Method, path: &str) -> Matched {
    if path.contains("//") {
        return Matched::NotFound;
    }
    // HEAD is GET without the body (the HTTP server leaves the body out).
    let wanted = if method == Method::HEAD { "GET" } else { method.as_str() };
    let parts = segments(path);
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = match_pattern(r.pattern, &parts) {
            if r.method == wanted {
                return Matched::Found(r, params);
            }
            allowed.push(r.method);
            if r.method == "GET" {
                allowed.push("HEAD");
            }
        }
    }
    if allowed.is_empty() {
        Matched::NotFound
    } else {
        Matched::WrongMethod(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_and_without_trailing_slash() {
        for path in ["/api/v1/accounts/22507000001/deposit/", "/api/v1/accounts/22507000001/deposit"] {
            match find(&Method::POST, path) {
                Matched::Found(r, params) => {
                    assert_eq!(r.handler, Handler::AccountDeposit);
                    assert_eq!(params, vec!["22507000001".to_string()]);
                }
                _ => panic!("{path} did not match"),
            }
        }
    }

    #[test]
    fn head_is_answered_as_get() {
        assert!(matches!(find(&Method::HEAD, "/"), Matched::Found(r, _) if r.method == "GET"));
        assert!(matches!(find(&Method::HEAD, "/api/v1/transfers/"), Matched::Found(r, _) if r.method == "GET"));
        assert!(matches!(find(&Method::DELETE, "/healthz"), Matched::WrongMethod(m) if m.contains(&"HEAD")));
    }

    #[test]
    fn wrong_methods_and_unknown_paths_are_told_apart() {
        assert!(matches!(find(&Method::DELETE, "/api/v1/transfers/"), Matched::WrongMethod(m) if m.contains(&"GET")));
        assert!(matches!(find(&Method::GET, "/api/v1/nope"), Matched::NotFound));
        assert!(matches!(find(&Method::GET, "/api/v1//accounts"), Matched::NotFound));
    }

    #[test]
    fn path_parameters_are_percent_decoded() {
        match find(&Method::GET, "/api/v1/accounts/%2B22507000001") {
            Matched::Found(_, params) => assert_eq!(params, vec!["+22507000001".to_string()]),
            _ => panic!("no match"),
        }
        assert!(matches!(find(&Method::GET, "/api/v1/accounts/%FF"), Matched::NotFound));
    }

    #[test]
    fn every_pattern_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.pattern)), "{} {}", r.method, r.pattern);
        }
    }
}
