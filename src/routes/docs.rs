//! The API's description (`/openapi.json`) and its readers: Swagger UI at `/docs`, ReDoc at `/redoc`.
//! Both work offline: Swagger UI's files come with `utoipa-swagger-ui`'s `vendored` feature,
//! ReDoc's bundle is compiled in by `build.rs`.

use std::num::NonZeroU32;

use actix_web::{
    App, HttpResponse, get,
    http::header::{self, ContentType},
    web::{Bytes, Data},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        HeaderBuilder, KnownFormat, ObjectBuilder, RefOr, SchemaFormat, Type, path::Operation,
        path::PathItem,
    },
};
use utoipa_actix_web::{AppExt, scope};
use utoipa_redoc::{Redoc, Servable};
use utoipa_swagger_ui::{Config, SwaggerUi};

use super::{
    Optional, batches::BatchRefused, configure, transactions::PostingNeedsAnAmount,
    webhooks::WebhookMessage,
};
use crate::{
    error::{Answer, ErrorBody, FieldError, LocItem, OverRequestLimit, ValidationErrorBody, merge},
    middleware::UNLIMITED_PATHS,
};

/// The OpenAPI document of a server with these routes, collected from their handlers;
/// `rate_limit` the requests a second each client may send (`RATE_LIMIT_PER_SECOND`), if limited.
pub fn document(optional: Optional, rate_limit: Option<NonZeroU32>) -> utoipa::openapi::OpenApi {
    let (_, mut api) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(scope("").configure(|config| configure(config, optional)))
        .split_for_parts();
    PostingNeedsAnAmount.modify(&mut api);
    PublicOperations.modify(&mut api);
    RowIds.modify(&mut api);
    // The API is for callers outside the operator's network (OWASP API9: know what is exposed).
    for server in api.servers.iter_mut().flatten() {
        server.extensions = Some(
            utoipa::openapi::extensions::ExtensionsBuilder::new()
                .add("x-internal", false)
                .build(),
        );
    }
    if let Some(per_second) = rate_limit {
        RateLimited(per_second).modify(&mut api);
    }
    api
}

/// Every operation of a path.
fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// An operation that declares no security is public, and says so (`security: []`), so that a
/// reader or a linter cannot mistake it for one whose requirement was forgotten.
struct PublicOperations;

impl Modify for PublicOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for operation in openapi.paths.paths.values_mut().flat_map(operations) {
            operation.security.get_or_insert_with(Vec::new);
        }
    }
}

/// `"per-client";r=1000000;t=1` and its like are under 32 characters.
const RATE_LIMIT_FIELD_MAX_LEN: usize = 64;

/// A path's `{..._id}` names a row, whose ids start at 1; any other number is refused as no row
/// is (404), so the bounds say what can be found.
struct RowIds;

impl Modify for RowIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::ParameterIn;
        let id = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
            .minimum(Some(1))
            .maximum(Some(i64::MAX))
            .build();
        let operations = openapi.paths.paths.values_mut().flat_map(operations);
        let parameters = operations.flat_map(|operation| operation.parameters.iter_mut().flatten());
        for parameter in parameters {
            let RefOr::T(parameter) = parameter else {
                continue;
            };
            if parameter.parameter_in == ParameterIn::Path && parameter.name.ends_with("_id") {
                parameter.schema = Some(id.clone().into());
            }
        }
    }
}

/// Each limited operation may answer 429, and every answer of it says where the client stands.
struct RateLimited(NonZeroU32);

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let header = |description: &str, pattern: &str, example: &str| {
            HeaderBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .max_length(Some(RATE_LIMIT_FIELD_MAX_LEN))
                        .pattern(Some(pattern)),
                ))
                .description(Some(description))
                .example(Some(example.into()))
                .build()
        };
        let policy = header(
            "The client's limit (IETF draft RateLimit fields): `q` requests per `w` seconds",
            r#"^"per-client";q=[0-9]+;w=1$"#,
            &format!("\"per-client\";q={};w=1", self.0),
        );
        let state = header(
            "What the client has left (`r`) and the seconds until its count is full again (`t`)",
            r#"^"per-client";r=[0-9]+;t=[0-9]+$"#,
            &format!("\"per-client\";r={};t=1", self.0.get() - 1),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            if UNLIMITED_PATHS.contains(&path.as_str()) {
                continue;
            }
            for operation in operations(item) {
                let documented = std::mem::take(&mut operation.responses.responses);
                operation.responses.responses = merge([documented, OverRequestLimit::responses()]);
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        let headers = &mut response.headers;
                        headers.insert("RateLimit-Policy".into(), policy.clone().into());
                        headers.insert("RateLimit".into(), state.clone().into());
                    }
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "bank-api",
        description = "An observable banking API: accounts, a ledger of credits and debits, and \
atomic transfers between accounts, and holds that reserve money to capture later. Money is always an integer number of minor units (cents). Errors \
use FastAPI's shapes: `{\"detail\": \"...\"}`, and for 422 a list of `{loc, msg, type}`. \
Prometheus metrics are at `/metrics`.\n\nData routes need a bearer token: sign up with \
`POST /users`, then press **Authorize** and log in (or `POST /token`). A customer sees and moves only \
their own accounts; an operator, every account.",
    ),
    modifiers(&OAuth2PasswordFlow),
    // Relative: the document describes whichever address serves it.
    servers((url = "/", description = "The server that serves this document, in production, staging or development alike")),
    // The error bodies of the response sets in `responses`, which refer to them by name, and
    // what a webhook endpoint receives (no route answers it, so nothing else would list it).
    components(schemas(ErrorBody, ValidationErrorBody, FieldError, LocItem, BatchRefused, WebhookMessage)),
    tags(
        (name = "users", description = "Sign up, and log in for the bearer token every data route needs"),
        (name = "accounts", description = "Open accounts and read them, their balance and their history"),
        (name = "transactions", description = "Credits and debits on one account"),
        (name = "transfers", description = "Money from one account to another, atomically"),
        (name = "holds", description = "Money reserved now, then captured or voided once, or released when it expires"),
        (name = "webhooks", description = "Endpoints that receive the money events of your accounts, signed (Standard Webhooks)"),
        (name = "batches", description = "Many postings and transfers in one request, each with its own result, or all or none"),
        (name = "operations", description = "Probes and metrics for operators"),
        (name = "diagnostics", description = "Routes that fail on purpose, for testing monitoring; off in production"),
    )
)]
pub struct ApiDoc;

/// The OAuth2 password flow of `POST /token`, as FastAPI's `OAuth2PasswordBearer` declares it:
/// Swagger UI's Authorize dialog logs in with it and sends the token with "Try it out".
struct OAuth2PasswordFlow;

impl utoipa::Modify for OAuth2PasswordFlow {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Flow, OAuth2, Password, Scopes, SecurityScheme};
        let flow = Flow::Password(Password::with_refresh_url(
            "/token",
            Scopes::new(),
            "/token",
        ));
        // RFC8725 (JWT best current practices) in the words linters look for.
        let description = "Bearer tokens from `POST /token`: JWTs made as RFC8725 advises, \
            signed with HS256 and checked with HS256 only (`alg: none` and every other algorithm \
            refused), `exp` required and checked without leeway, valid `TOKEN_TTL_SECS` (15 \
            minutes by default), renewed at the same URL with the refresh token beside them";
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "OAuth2PasswordBearer",
                SecurityScheme::OAuth2(OAuth2::with_description([flow], description)),
            );
    }
}

const REDOC_PAGE: &str = include_str!("redoc/index.html");
const REDOC_INIT: &str = include_str!("redoc/init.js");
const REDOC_STYLE: &str = include_str!("redoc/page.css");
const REDOC_BUNDLE: &str = include_str!(concat!(
    env!("OUT_DIR"),
    "/package/bundles/redoc.standalone.js"
));

/// `/` is for people: send them to the interactive docs.
#[get("/")]
pub async fn root() -> HttpResponse {
    found("/docs/")
}

/// FastAPI's address for Swagger UI. Its page loads its files by relative paths, so it is served
/// at `/docs/` and this spelling leads there.
#[get("/docs")]
pub async fn docs_without_slash() -> HttpResponse {
    found("/docs/")
}

/// The document as its readers get it, written once at start: `/openapi.json`, and ReDoc's
/// page, which carries it. The server's workers share these bytes: handed the document itself,
/// Swagger UI and ReDoc each kept a copy of its tree per worker (megabytes of maps in all) and
/// Swagger UI serialized it again for every request.
#[derive(Clone)]
pub struct Published {
    json: Bytes,
    redoc_page: Bytes,
}

impl Published {
    pub fn new(api: &utoipa::openapi::OpenApi) -> Result<Self, serde_json::Error> {
        Ok(Self {
            json: serde_json::to_vec(api)?.into(),
            redoc_page: Redoc::with_url("/redoc", api.clone())
                .custom_html(REDOC_PAGE)
                .to_html()
                .into(),
        })
    }
}

/// The OpenAPI document that Swagger UI and ReDoc read.
#[get("/openapi.json")]
pub async fn openapi_json(published: Data<Published>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(published.json.clone())
}

/// ReDoc's page, with the same document as Swagger UI.
#[get("/redoc")]
pub async fn redoc(published: Data<Published>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::html())
        .body(published.redoc_page.clone())
}

/// Swagger UI at `/docs/`, reading `/openapi.json`.
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").config(Config::new(["/openapi.json"]))
}

/// ReDoc's script, from this binary instead of a CDN. It changes only with the binary.
#[get("/redoc/redoc.standalone.js")]
pub async fn redoc_bundle() -> HttpResponse {
    asset("text/javascript; charset=utf-8", REDOC_BUNDLE)
}

/// The script that starts ReDoc on its page.
#[get("/redoc/init.js")]
pub async fn redoc_init() -> HttpResponse {
    asset("text/javascript; charset=utf-8", REDOC_INIT)
}

/// The style of ReDoc's page.
#[get("/redoc/page.css")]
pub async fn redoc_style() -> HttpResponse {
    asset("text/css; charset=utf-8", REDOC_STYLE)
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(body)
}

fn found(location: &'static str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, location))
        .finish()
}
