//! Any text: parsing, checking, printing and the JSON form never panic, and
//! whatever parses prints to a fixpoint.

#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_lang::catalog::{Kind, Schema};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expr = match strata_lang::parse(text) {
        Ok(expr) => expr,
        Err(e) => {
            let _ = e.render(text);
            let _ = e.line_col(text);
            return;
        }
    };
    let mut valid = false;
    for kind in [Kind::Customer, Kind::Product] {
        match strata_lang::check(&expr, &Schema::builtin(kind)) {
            Ok(()) => valid = true,
            Err(e) => {
                let _ = e.render(text);
            }
        }
        let _ = strata_lang::segment_refs(&expr, kind);
    }
    let printed = strata_lang::to_text(&expr);
    let again = strata_lang::parse(&printed).expect("the printed text parses");
    assert_eq!(
        strata_lang::to_text(&again),
        printed,
        "printing is not a fixpoint"
    );

    let json = strata_lang::to_json(&expr);
    if !valid {
        // The JSON form is only promised for checked rules (an unchecked
        // call may repeat an argument, which a JSON object cannot hold).
        let _ = strata_lang::from_json(&json);
        return;
    }
    let wire = serde_json::to_string(&json).expect("serialises");
    let read: serde_json::Value = serde_json::from_str(&wire).expect("reads back");
    let back = strata_lang::from_json(&read).expect("the JSON form reads back");
    let normal = strata_lang::to_text(&strata_lang::normalise(expr));
    assert_eq!(
        strata_lang::to_text(&back),
        normal,
        "text -> JSON -> text differs"
    );
});
