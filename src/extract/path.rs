//! Path parameters: ids that do not parse are a 422 naming the parameter, not actix-web's
//! plain-text 404.

use actix_web::HttpRequest;

use crate::error::{FieldError, Invalid, Loc};

/// `/accounts/abc`, or an id beyond i64.
pub fn path_error(_: actix_web::error::PathError, req: &HttpRequest) -> actix_web::Error {
    let name = req
        .match_info()
        .iter()
        .next()
        .map_or("id", |(name, _)| name);
    Invalid(vec![FieldError::not_an_integer(Loc::Path(name))]).into()
}
