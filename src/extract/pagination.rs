//! `?after_id=&skip=&limit=`: which page of a list a request asks for, with every bad value named.

use actix_web::{FromRequest, HttpRequest, dev::Payload};
use bank_core::ledger::Page;
use utoipa::IntoParams;

use crate::error::{FieldError, Invalid, Loc};

/// `?after_id=&skip=&limit=`: a page of a list ordered by id.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Pagination {
    /// Start after the row with this id: pass the last id of the previous page. Any page costs
    /// one index seek, where `skip` walks every row it skips.
    #[param(minimum = 0, maximum = 9223372036854775807_i64, required = false)]
    pub after_id: Option<u64>,
    /// How many rows to skip from the start of the list (after `after_id`, if given).
    #[param(
        minimum = 0,
        maximum = 9223372036854775807_i64,
        default = 0,
        required = false
    )]
    pub skip: u64,
    #[param(schema_with = crate::extract::schemas::page_limit, required = false)]
    pub limit: u64,
}

impl Pagination {
    pub const DEFAULT_LIMIT: u64 = 100;
    pub const MAX_LIMIT: u64 = 1000;

    fn parse(query: &str) -> Result<Self, Invalid> {
        let pairs = super::QueryPairs::parse(query);
        let value = |name: &str| pairs.last(name);
        let mut problems = Vec::new();
        let mut number =
            |name: &'static str, range: std::ops::RangeInclusive<u64>, default: u64| {
                let Some(raw) = value(name) else {
                    return default;
                };
                match raw.parse::<u64>() {
                    Ok(number) if range.contains(&number) => number,
                    Ok(_) => {
                        let msg = format!(
                            "Input should be between {} and {}",
                            range.start(),
                            range.end()
                        );
                        problems.push(FieldError::new(Loc::Query(name), msg, "range"));
                        default
                    }
                    Err(_) => {
                        problems.push(FieldError::not_an_integer(Loc::Query(name)));
                        default
                    }
                }
            };
        let after_id = value("after_id").map(|_| number("after_id", 0..=i64::MAX as u64, 0));
        let skip = number("skip", 0..=i64::MAX as u64, 0);
        let limit = number("limit", 1..=Self::MAX_LIMIT, Self::DEFAULT_LIMIT);
        if problems.is_empty() {
            Ok(Self {
                after_id,
                skip,
                limit,
            })
        } else {
            Err(Invalid(problems))
        }
    }
}

impl FromRequest for Pagination {
    type Error = Invalid;
    type Future = std::future::Ready<Result<Self, Invalid>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Self::parse(req.query_string()))
    }
}

impl From<Pagination> for Page {
    fn from(page: Pagination) -> Self {
        Self {
            // In range by parsing: at most i64::MAX.
            after_id: page.after_id.map(|id| id as i64),
            skip: page.skip,
            limit: page.limit,
        }
    }
}
