//! Browser tests of the admin page (SPEC §8): a real headless Chromium driven through
//! chromedriver (fantoccini) against the real server and simulator. Without Chromium
//! and chromedriver installed each test says it did not run and returns; `.ci/run`
//! installs them and sets `SYSGP_REQUIRE_BROWSER=1`, so in CI they always run.
//! Screenshots land in `target/screenshots/`.

mod flows;
mod page;
mod screens;
mod support;
