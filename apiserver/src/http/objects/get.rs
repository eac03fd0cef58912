//! GET of one object.

use http::{Response, StatusCode};

use super::{Body, Call};
use crate::error::Error;

impl Call<'_> {
    pub(super) fn get(&self, name: &str) -> Result<Response<Body>, Error> {
        let obj = self.store.get(self.ns(), name).ok_or_else(|| self.not_found(name))?;
        self.object_response(StatusCode::OK, &obj)
    }
}
