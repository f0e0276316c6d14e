//! The `claims` request parameter (OIDC Core §5.5) and the choice of `acr` and `amr`.
//!
//! Parsing is defensive (protocol reference §3.3): `value` and `values` are both read,
//! non-string values and unknown members are skipped, order is preference. The choice follows
//! §5.4: for each method the user has, the first requested `acr` whose factor types include
//! the method's type, and the method's `amr` only if the request allows it. A request with no
//! usable `acr` satisfies nothing; no default is assumed.

use serde_json::Value;

use crate::factor::{FactorType, Method};

/// The most values read from one list, and the longest value kept.
const MAX_VALUES: usize = 32;
const MAX_VALUE_LEN: usize = 64;
pub const MAX_CLAIMS_LEN: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    #[error("claims is {len} bytes; at most {max} are read")]
    TooLong { len: usize, max: usize },
    #[error("claims is not a JSON object: {detail}")]
    NotJson { detail: String },
}

/// What the request asks of the returned `id_token`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requested {
    pub acr: Vec<String>,
    /// `None` when the request leaves `amr` open.
    pub amr: Option<Vec<String>>,
}

/// A method the user can run for this request, with the `acr` it would satisfy and the `amr`
/// the token would carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Offer {
    pub method: Method,
    pub acr: String,
    pub amr: String,
}

/// A method the user has, with the `amr` proving it would earn: a method's own value, or for
/// certificates the one their trust store grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub method: Method,
    pub amr: &'static str,
}

impl From<Method> for Candidate {
    fn from(method: Method) -> Candidate {
        Candidate {
            method,
            amr: method.amr(),
        }
    }
}

pub fn parse(claims: Option<&str>) -> Result<Requested, ClaimsError> {
    let Some(text) = claims else {
        return Ok(Requested::default());
    };
    if text.len() > MAX_CLAIMS_LEN {
        return Err(ClaimsError::TooLong {
            len: text.len(),
            max: MAX_CLAIMS_LEN,
        });
    }
    let doc: Value = serde_json::from_str(text).map_err(|e| ClaimsError::NotJson {
        detail: e.to_string(),
    })?;
    if !doc.is_object() {
        return Err(ClaimsError::NotJson {
            detail: "top level is not an object".into(),
        });
    }
    let id_token = doc.get("id_token");
    let acr = id_token
        .and_then(|t| t.get("acr"))
        .map(strings)
        .unwrap_or_default();
    let amr = id_token.and_then(|t| t.get("amr")).map(strings);
    Ok(Requested { acr, amr })
}

/// The strings of a claim request's `value` and `values` members.
fn strings(request: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push = |v: &Value| {
        if let Some(s) = v.as_str()
            && s.len() <= MAX_VALUE_LEN
            && out.len() < MAX_VALUES
            && !out.iter().any(|o| o == s)
        {
            out.push(s.to_owned());
        }
    };
    if let Some(v) = request.get("value") {
        push(v);
    }
    if let Some(Value::Array(values)) = request.get("values") {
        values.iter().for_each(&mut push);
    }
    out
}

/// The factor types an `acr` value accepts (protocol reference §5.3).
pub fn acr_accepts(acr: &str) -> &'static [FactorType] {
    use FactorType::*;
    match acr {
        "possessionorinherence" => &[Possession, Inherence],
        "knowledgeorpossession" => &[Knowledge, Possession],
        "knowledgeorinherence" => &[Knowledge, Inherence],
        "knowledgeorpossessionorinherence" => &[Knowledge, Possession, Inherence],
        "knowledge" => &[Knowledge],
        "possession" => &[Possession],
        "inherence" => &[Inherence],
        _ => &[],
    }
}

/// The offers the request allows among the user's `candidates`, in the user's order.
pub fn negotiate(requested: &Requested, candidates: &[Candidate]) -> Vec<Offer> {
    candidates
        .iter()
        .filter(|c| match &requested.amr {
            Some(allowed) => allowed.iter().any(|a| a == c.amr),
            None => true,
        })
        .filter_map(|c| {
            let acr = requested
                .acr
                .iter()
                .find(|acr| acr_accepts(acr).contains(&c.method.factor_type()))?;
            Some(Offer {
                method: c.method,
                acr: acr.clone(),
                amr: c.amr.to_owned(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRA_DEFAULT: &str = concat!(
        r#"{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"#,
        r#""amr":{"essential":true,"values":["face","fido","fpt","hwk","iris","otp","pop","#,
        r#""retina","sc","sms","swk","tel","vbm"]}}}"#
    );

    const TOTP: [Candidate; 1] = [Candidate {
        method: Method::Totp,
        amr: "otp",
    }];

    #[test]
    fn entra_default_request_is_met_by_otp() {
        let r = parse(Some(ENTRA_DEFAULT)).expect("valid");
        let offers = negotiate(&r, &TOTP);
        assert_eq!(
            offers,
            vec![Offer {
                method: Method::Totp,
                acr: "possessionorinherence".into(),
                amr: "otp".into(),
            }]
        );
    }

    #[test]
    fn the_first_requested_acr_that_fits_is_chosen() {
        let r = parse(Some(
            r#"{"id_token":{"acr":{"values":["inherence","knowledgeorpossession","possession"]}}}"#,
        ))
        .expect("valid");
        assert_eq!(negotiate(&r, &TOTP)[0].acr, "knowledgeorpossession");
    }

    #[test]
    fn value_and_values_are_both_read_and_non_strings_skipped() {
        let r = parse(Some(
            r#"{"id_token":{"acr":{"value":"possession","values":[1,null,{"x":1},"inherence"]}}}"#,
        ))
        .expect("valid");
        assert_eq!(
            r.acr,
            vec!["possession".to_string(), "inherence".to_string()]
        );
    }

    #[test]
    fn no_usable_acr_satisfies_nothing() {
        for claims in [
            None,
            Some("{}"),
            Some(r#"{"id_token":{}}"#),
            Some(r#"{"id_token":{"acr":{"values":["knowledge"]}}}"#),
            Some(r#"{"id_token":{"acr":{"values":["inherence"]}}}"#),
            Some(r#"{"id_token":{"acr":{"values":["made-up"]}}}"#),
            Some(r#"{"id_token":{"acr":"possession"}}"#),
        ] {
            let r = parse(claims).expect("parses");
            assert!(negotiate(&r, &TOTP).is_empty(), "{claims:?}");
        }
    }

    #[test]
    fn an_amr_list_without_otp_excludes_otp() {
        let r = parse(Some(
            r#"{"id_token":{"acr":{"values":["possession"]},"amr":{"values":["fido","sc"]}}}"#,
        ))
        .expect("valid");
        assert!(negotiate(&r, &TOTP).is_empty());
    }

    #[test]
    fn a_candidate_is_judged_by_its_own_amr() {
        let r = parse(Some(
            r#"{"id_token":{"acr":{"values":["possession"]},"amr":{"values":["hwk"]}}}"#,
        ))
        .expect("valid");
        let hardware = Candidate {
            method: Method::Totp,
            amr: "hwk",
        };
        let offers = negotiate(&r, &[TOTP[0], hardware]);
        assert_eq!(offers.len(), 1);
        assert_eq!(offers[0].amr, "hwk");
    }

    #[test]
    fn malformed_and_hostile_claims_are_refused_without_panic() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let huge = format!(
            r#"{{"id_token":{{"acr":{{"values":["{}"]}}}}}}"#,
            "a".repeat(9000)
        );
        for bad in [
            "",
            "[]",
            "\"x\"",
            "{",
            "{\"id_token\":",
            deep.as_str(),
            huge.as_str(),
        ] {
            assert!(parse(Some(bad)).is_err(), "{:.40}", bad);
        }
    }

    #[test]
    fn overlong_and_excess_values_are_dropped() {
        let many: Vec<String> = (0..100).map(|i| format!("\"v{i}\"")).collect();
        let long = "x".repeat(65);
        let text = format!(
            r#"{{"id_token":{{"acr":{{"values":["{long}",{}]}}}}}}"#,
            many.join(",")
        );
        let r = parse(Some(&text)).expect("valid");
        assert_eq!(r.acr.len(), MAX_VALUES);
        assert!(!r.acr.contains(&long));
    }
}
