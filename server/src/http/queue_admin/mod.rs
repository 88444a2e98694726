//! `/admin/queues`: a server-rendered queue dashboard (admins only) and its JSON
//! API under `/api/admin/queues`. Auth: a bearer token, or the httpOnly cookie the
//! page's login form sets.

mod api;
mod page;
mod session;

pub use api::routes;
pub use page::page_routes;
pub use session::{AdminSession, COOKIE_NAME};
