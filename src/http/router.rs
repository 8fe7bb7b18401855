//! The route table: every route of the API with its method and path pattern, in one
//! list that dispatch, the OpenAPI document and the role matrix test all read.
//! Paths match with or without a trailing slash.

use warp::http::Method;

/// What a route does; `dispatch` has one arm per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handler {
    /// `GET /healthz`.
    Healthz,
    /// `GET /readyz`.
    Readyz,
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
}

const fn route(method: &'static str, pattern: &'static str, handler: Handler) -> Route {
    Route { method, pattern, handler }
}

/// Every route.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", Handler::Healthz),
    route("GET", "/readyz", Handler::Readyz),
    route("GET", "/metrics", Handler::Metrics),
    route("POST", "/api/v1/accounts/", Handler::AccountCreate),
    route("GET", "/api/v1/accounts/", Handler::AccountList),
    route("GET", "/api/v1/accounts/{msisdn}/", Handler::AccountGet),
    route("POST", "/api/v1/accounts/{msisdn}/freeze/", Handler::AccountFreeze),
    route("POST", "/api/v1/accounts/{msisdn}/unfreeze/", Handler::AccountUnfreeze),
    route("POST", "/api/v1/accounts/{msisdn}/deposit/", Handler::AccountDeposit),
    route("POST", "/api/v1/accounts/{msisdn}/withdraw/", Handler::AccountWithdraw),
    route("GET", "/api/v1/accounts/{msisdn}/transfers/", Handler::AccountStatement),
    route("GET", "/api/v1/system-accounts/", Handler::SystemAccounts),
    route("POST", "/api/v1/transfers/", Handler::TransferCreate),
    route("GET", "/api/v1/transfers/", Handler::TransferList),
    route("GET", "/api/v1/transfers/{id}/", Handler::TransferGet),
    route("POST", "/api/v1/transfers/{id}/resolve/", Handler::TransferResolve),
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
    let parts = segments(path);
    let mut allowed = Vec::new();
    for r in ROUTES {
        if let Some(params) = match_pattern(r.pattern, &parts) {
            if r.method == method.as_str() {
                return Matched::Found(r, params);
            }
            allowed.push(r.method);
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
