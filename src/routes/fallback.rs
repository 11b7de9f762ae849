//! What a request that no route takes is answered: 404 for an unknown path, 405 with `Allow` for a
//! known path asked with another method. The methods come from the OpenAPI document, which lists
//! every route.

use std::collections::HashMap;

use actix_web::{HttpRequest, HttpResponse};

use crate::error::{MethodNotAllowed, RouteNotFound, failures};

failures! {
    /// What a request that no route takes is answered.
    pub enum NoRoute {
        NotFound(RouteNotFound),
        Method(MethodNotAllowed),
    }
}

/// The methods each documented route template answers, for the `Allow` header of a 405.
#[derive(Clone, Default)]
pub struct AllowedMethods(HashMap<String, String>);

impl AllowedMethods {
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let methods = api.paths.paths.iter().map(|(path, item)| {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            let allowed: Vec<&str> = operations
                .iter()
                .filter(|(_, operation)| operation.is_some())
                .map(|(method, _)| *method)
                .collect();
            (path.clone(), allowed.join(", "))
        });
        Self(methods.collect())
    }
}

/// No route has this path (404), or one does but not for this method (405, with `Allow`).
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, NoRoute> {
    let allowed = req.match_pattern().and_then(|pattern| {
        req.app_data::<actix_web::web::Data<AllowedMethods>>()
            .and_then(|methods| methods.0.get(&pattern).cloned())
    });
    Err(match allowed {
        Some(allow) => MethodNotAllowed(allow).into(),
        None => RouteNotFound.into(),
    })
}
