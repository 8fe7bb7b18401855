//! Behaviour of the validator through its public surface: messages, hashes, limits,
//! output cells, random input (never a panic) and throughput.

use super::*;
use crate::prng::Prng;

const LIMITS: Limits = Limits { rows_max: 1000, amount_max: 10_000_000, total_max: 1_000_000_000 };

fn xof() -> Currency {
    Currency::parse("XOF").expect("XOF")
}

fn run(text: &[u8], limits: Limits) -> (Vec<Event>, Result<Summary, Fatal>) {
    let mut events = Vec::new();
    let result = validate(text, xof(), limits, |e| events.push(e));
    (events, result)
}

fn problems(events: &[Event]) -> Vec<Problem> {
    let mut out = Vec::new();
    for event in events {
        match event {
            Event::Invalid { problems, .. } => out.extend(problems.iter().cloned()),
            Event::Warning(p) => out.push(p.clone()),
            Event::Valid(_) => {}
        }
    }
    out
}

#[test]
fn the_same_rows_hash_the_same_in_another_encoding_order_of_columns_and_delimiter() {
    let a = b"msisdn,amount,reference\n22507000001,1500,R1\n+225 0700 0002,12,R2\n";
    let b = "\u{feff}Reference;AMOUNT;msisdn;name\r\n R1 ;1500;22507000001;Awa\r\n\r\nR2;12.0;22507000002;\r\n";
    let c = b"msisdn,amount,reference\n22507000002,12,R2\n22507000001,1500,R1\n";
    let d = b"msisdn,amount,reference\n22507000001,1500,R1\n22507000002,12,\n";
    let hash = |text: &[u8]| run(text, LIMITS).1.expect("valid").content_hash;
    assert_eq!(hash(a), hash(b.as_bytes()));
    assert_ne!(hash(a), hash(c), "order counts");
    assert_ne!(hash(a), hash(d), "references count");
}

#[test]
fn invalid_rows_do_not_enter_the_content_hash() {
    let with_bad = b"msisdn,amount\n22507000001,1500\nabc,1\n";
    let without = b"msisdn,amount\n22507000001,1500\n";
    assert_eq!(run(with_bad, LIMITS).1.expect("ok").content_hash, run(without, LIMITS).1.expect("ok").content_hash);
}

#[test]
fn duplicates_name_the_first_line() {
    let text = b"msisdn,amount,reference\n22507000001,100,A\n22507000002,200,B\n22507000001,100,A\n";
    let (events, _) = run(text, LIMITS);
    let found = problems(&events);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].line, found[0].code, found[0].field.as_deref()),
        (4, "DUPLICATE_REFERENCE", Some("reference"))
    );
    assert!(found[0].message.contains("line 2"), "{}", found[0].message);
    let text = b"msisdn,amount\n22507000001,100\n22507000002,200\n22507000001,100\n";
    let (events, _) = run(text, LIMITS);
    assert!(matches!(&events[2], Event::Valid(r) if r.line == 4), "the row's own event comes first");
    let Event::Warning(p) = &events[3] else { panic!("a warning after the row: {events:?}") };
    assert_eq!((p.line, p.code), (4, "DUPLICATE_ROW"));
    assert!(p.message.contains("line 2"), "{}", p.message);
}

#[test]
fn every_problem_of_a_row_is_reported_with_its_field() {
    let (events, _) = run(b"msisdn,amount,currency,name\nabc,1.5,USD,\"a\tb\"\n", LIMITS);
    let fields: Vec<(Option<String>, &str)> = problems(&events).into_iter().map(|p| (p.field, p.code)).collect();
    let want = [
        (Some("msisdn".to_owned()), "MSISDN_FORMAT"),
        (Some("amount".to_owned()), "TOO_MANY_DECIMALS"),
        (Some("currency".to_owned()), "CURRENCY_MISMATCH"),
        (Some("name".to_owned()), "CONTROL_CHARACTER"),
    ];
    assert_eq!(fields, want);
    let Event::Invalid { raw, .. } = &events[0] else { panic!("invalid") };
    assert_eq!(raw, &["abc", "1.5", "USD", "a\tb"], "raw fields are as read, unquoted");
}

#[test]
fn limit_breaches_name_the_limit() {
    let text = b"msisdn,amount\n22507000001,600\n22507000002,600\n22507000003,1\n";
    let (_, result) = run(text, Limits { rows_max: 2, ..LIMITS });
    let Fatal(p) = result.expect_err("three rows over two");
    assert_eq!((p.line, p.code), (4, "ROWS_LIMIT"));
    assert!(p.message.contains("more than 2 rows"), "{}", p.message);
    let (_, result) = run(text, Limits { total_max: 1000, ..LIMITS });
    let Fatal(p) = result.expect_err("1200 over 1000");
    assert_eq!((p.line, p.code), (3, "TOTAL_LIMIT"));
    assert!(p.message.contains("1000 XOF"), "{}", p.message);
    let (events, _) = run(b"msisdn,amount\n22507000001,11\n", Limits { amount_max: 10, ..LIMITS });
    assert!(problems(&events)[0].message.contains("(10 XOF)"), "{:?}", problems(&events));
}

#[test]
fn header_problems_are_fatal_and_name_the_column() {
    let fatal = |text: &[u8]| run(text, LIMITS).1.expect_err("fatal").0;
    let p = fatal(b"msisdn,amount,iban,bic\n1,2,3,4\n");
    assert_eq!((p.code, p.field.as_deref()), ("UNKNOWN_COLUMN", Some("iban")));
    assert!(p.message.contains("'iban', 'bic'"), "{}", p.message);
    let p = fatal(b"msisdn,amount,\n1,2,\n");
    assert!(p.message.contains("column 3 has no name"), "{}", p.message);
    let p = fatal(b"msisdn,name\n1,2\n");
    assert_eq!((p.code, p.field.as_deref()), ("MISSING_COLUMN", Some("amount")));
    let p = fatal(b"\n\n   \n");
    assert_eq!((p.line, p.code), (1, "EMPTY_FILE"));
    let p = fatal(b"#total,1,5\n");
    assert_eq!(p.code, "MISSING_HEADER");
}

#[test]
fn control_lines_are_checked_against_the_header() {
    let text = b"#TOTAL,2,300\nmsisdn,amount\n22507000001,100\n22507000002,200\n";
    assert_eq!(run(text, LIMITS).1.expect("valid").control, Some((2, 300)));
    for (text, why) in [
        (&b"#total,x,300\nmsisdn,amount\n22507000001,300\n"[..], "row count"),
        (b"#total,1,30.5\nmsisdn,amount\n22507000001,300\n", "sum"),
        (b"#total,1\nmsisdn,amount\n22507000001,300\n", "must read"),
        (b"#total;1;300\nmsisdn,amount\n22507000001,300\n", "separated by ';'"),
    ] {
        let (events, result) = run(text, LIMITS);
        let found = problems(&events);
        assert_eq!((found[0].line, found[0].code), (1, "CONTROL_FORMAT"), "{why}");
        assert!(found[0].message.contains(why), "{}", found[0].message);
        assert_eq!(result.expect("not fatal").control, None);
    }
    // Rows that fail on their amount leave the sum unknown: only the count is compared.
    let text = b"#total,2,300\nmsisdn,amount\n22507000001,100\n22507000002,abc\n";
    assert_eq!(problems(&run(text, LIMITS).0).iter().map(|p| p.code).collect::<Vec<_>>(), ["AMOUNT_FORMAT"]);
    // An amount over the row maximum still counts towards the sum.
    let text = b"#total,2,300\nmsisdn,amount\n22507000001,100\n22507000002,200\n";
    let codes: Vec<_> = problems(&run(text, Limits { amount_max: 150, ..LIMITS }).0).iter().map(|p| p.code).collect();
    assert_eq!(codes, ["AMOUNT_TOO_LARGE"]);
}

#[test]
fn records_are_bounded_whatever_the_quotes_or_newlines() {
    let mut text = b"msisdn,amount,note\n22507000001,1,\"".to_vec();
    text.extend(std::iter::repeat_n(b"x\n".as_slice(), 40_000).flatten());
    let p = run(&text, LIMITS).1.expect_err("too long").0;
    assert_eq!((p.line, p.code), (2, "ROW_TOO_LONG"));
    let mut text = b"msisdn,amount\n".to_vec();
    text.extend(std::iter::repeat_n(b'1', 100_000));
    let p = run(&text, LIMITS).1.expect_err("too long").0;
    assert_eq!((p.line, p.code), (2, "ROW_TOO_LONG"));
}

#[test]
fn output_cells_cannot_become_formulas() {
    for text in ["=1+1", "+22507000001", "-5", "@SUM(A1)", "\tx", "\rx"] {
        assert_eq!(safe_cell(text), format!("'{text}"), "{text:?}");
    }
    for text in ["22507000001", "", "Awa", " =1", "'quoted"] {
        assert!(matches!(safe_cell(text), Cow::Borrowed(t) if t == text), "{text:?}");
    }
}

/// Checks what must hold for any input: lines in order, each problem on its event's
/// line, the summary adding up.
fn check_invariants(input: &[u8]) {
    let mut events = Vec::new();
    let result = validate(input, xof(), LIMITS, |e| events.push(e));
    let mut last_line = 0;
    for event in &events {
        match event {
            Event::Valid(row) => {
                assert!(row.line > last_line || last_line == 0, "{input:?}");
                last_line = row.line;
            }
            Event::Invalid { line, problems, .. } => {
                assert!(!problems.is_empty() && problems.iter().all(|p| p.line == *line), "{input:?}");
            }
            Event::Warning(p) => assert!(p.line > 0, "{input:?}"),
        }
    }
    if let Ok(summary) = result {
        let valid = events.iter().filter(|e| matches!(e, Event::Valid(_))).count() as u64;
        let invalid = events.iter().filter(|e| matches!(e, Event::Invalid { .. })).count() as u64;
        assert_eq!((summary.valid, summary.invalid, summary.rows), (valid, invalid, valid + invalid), "{input:?}");
        same_again(input, &events, &summary);
    }
}

/// `revalidate` after an accepted `validate`: the same rows and summary, no warnings.
fn same_again(input: &[u8], events: &[Event], summary: &Summary) {
    let mut again = Vec::new();
    let second = revalidate(input, xof(), LIMITS, summary, |e| again.push(e));
    let expected: Vec<&Event> = events.iter().filter(|e| !matches!(e, Event::Warning(_))).collect();
    assert_eq!(again.iter().collect::<Vec<_>>(), expected, "{input:?}");
    assert_eq!(second.as_ref(), Ok(summary), "{input:?}");
}

#[test]
fn a_second_pass_judges_rows_as_the_first_without_a_table() {
    let text = b"msisdn,amount,reference\n22507000001,100,A\n22507000002,200,B\n22507000001,100,A\n\
        22507000003,abc,B\n22507000004,5,C\n22507000004,5,\n22507000005,6,A\n";
    let (events, result) = run(text, LIMITS);
    let summary = result.expect("accepted, with invalid rows");
    assert_eq!(summary.duplicate_references, vec![(4, 2), (5, 3), (8, 2)]);
    assert_eq!((summary.valid, summary.invalid), (4, 3));
    assert!(events.iter().any(|e| matches!(e, Event::Warning(p) if p.code == "DUPLICATE_ROW")));
    same_again(text, &events, &summary);
}

#[test]
fn random_bytes_never_panic() {
    // Bytes that matter to the parser are over-represented so that the random files
    // reach deep states (quotes across lines, BOMs, comments, partial UTF-8).
    const ALPHABET: &[u8] = b"0123456789,,;;\"\"\n\n\r#. +-eE\t\xEF\xBB\xBF\xC3\xA9\xFF\x00amsidnou";
    let mut rng = Prng(0x5EED_CAFE_F00D_0001);
    for _ in 0..3000 {
        let len = rng.below(300);
        let mut input: Vec<u8> = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect();
        if rng.below(2) == 0 {
            let mut with_header = b"msisdn,amount,reference,note\n".to_vec();
            with_header.append(&mut input);
            input = with_header;
        }
        check_invariants(&input);
    }
    for _ in 0..500 {
        let input: Vec<u8> = (0..rng.below(2000)).map(|_| rng.next() as u8).collect();
        check_invariants(&input);
    }
}

#[test]
fn mutated_valid_files_never_panic() {
    let base = b"#total,3,4100\nmsisdn,amount,currency,reference,name,note\n\
        22507000001,1500,XOF,INV-1,\"Awa, T\",\"a \"\"note\"\"\"\n22507000002,2500,,INV-2,,\r\n+225 07 00 00 03,100,XOF,,Koffi,\n";
    let mut rng = Prng(0xDEC0_DED0_0000_0002);
    for _ in 0..3000 {
        let mut input = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(input.len());
            match rng.below(3) {
                0 => input[at] = rng.next() as u8,
                1 => {
                    input.remove(at);
                }
                _ => input.insert(at, b"\",;\n\r#"[rng.below(6)]),
            }
        }
        check_invariants(&input);
    }
}

#[test]
fn throughput_of_ordinary_rows() {
    // Run with `cargo test --release --lib throughput -- --nocapture` for the real figure.
    const ROWS: u32 = 200_000;
    let mut text = String::from("msisdn,amount,reference,name\n");
    for i in 0..ROWS {
        text.push_str(&format!("2250{:07},{}.{:02},PAY-{i},Payee number {i}\n", i + 1_000_000, 1 + i % 5000, i % 100));
    }
    let currency = Currency::parse("USD").expect("USD");
    let limits = Limits { rows_max: 1_000_000, amount_max: Minor::MAX, total_max: Minor::MAX };
    let started = std::time::Instant::now();
    let mut valid = 0u32;
    let summary = validate(text.as_bytes(), currency, limits, |e| valid += u32::from(matches!(e, Event::Valid(_))))
        .expect("valid");
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!((summary.valid, valid), (u64::from(ROWS), ROWS));
    println!(
        "{ROWS} rows ({} bytes) in {seconds:.3} s: {:.0} rows/s, {:.1} MB/s",
        text.len(),
        f64::from(ROWS) / seconds,
        text.len() as f64 / seconds / 1e6
    );
}

#[test]
fn invalid_rows_keep_what_parsed_outside_the_valid_total() {
    let text = b"msisdn,amount\n22507000001,10\nabc,10\n22507000002,xyz\n+225,20000000\n";
    let (events, result) = run(text, LIMITS);
    let read: Vec<(Option<Msisdn>, Option<Minor>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Invalid { msisdn, amount, .. } => Some((*msisdn, *amount)),
            _ => None,
        })
        .collect();
    let payee = Msisdn::parse("22507000002").expect("msisdn");
    assert_eq!(
        read,
        [(None, Some(10)), (Some(payee), None), (None, Some(20_000_000))],
        "over the maximum still parsed"
    );
    let summary = result.expect("summary");
    assert_eq!((summary.valid_total, summary.invalid_total), (10, 20_000_010));
}

#[test]
fn the_apostrophe_of_a_neutralised_cell_is_dropped_on_upload_and_others_are_kept() {
    for cell in ["=1+2", "+22507000001", "-5", "@x", "\tx", "\rx"] {
        assert_eq!(unneutralise(&safe_cell(cell)), cell, "our own output reads back as written");
    }
    for cell in ["'abc", "'", "it's", "''=x", "plain"] {
        assert_eq!(unneutralise(cell), cell, "only our own neutralising is undone");
    }
    let (events, result) = run(b"msisdn,amount,name\n'+22507000001,'-5,'=SUM(A1)\n'+22507000002,5,'=x\n", LIMITS);
    assert_eq!(problems(&events).iter().map(|p| p.code).collect::<Vec<_>>(), ["AMOUNT_FORMAT"], "{events:?}");
    let Some(Event::Valid(row)) = events.last() else { panic!("a valid row: {events:?}") };
    assert_eq!((row.msisdn.to_string(), row.name.as_deref()), ("22507000002".to_owned(), Some("=x")));
    assert_eq!(result.expect("summary").valid, 1);
}

#[test]
fn the_header_alone_gives_the_columns_without_reading_the_rows() {
    let columns = header_columns(&b"#total;1;5\n Amount ;MSISDN\n\xff\xfe\n"[..], xof(), LIMITS).expect("header");
    assert_eq!(columns, ["amount", "msisdn"]);
    let Fatal(p) = header_columns(&b"msisdn,amount,iban\n"[..], xof(), LIMITS).expect_err("unknown column");
    assert_eq!(p.code, "UNKNOWN_COLUMN");
}
