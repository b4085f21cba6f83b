//! `fermyon:spin/variables@2.0.0` host implementation.

use crate::app_manifest::check_variable_name;
use crate::spin_bindings::variables::{self, Error};
use crate::state::RequestState;

impl variables::Host for RequestState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if check_variable_name(&name).is_err() {
            return Ok(Err(Error::InvalidName(name)));
        }
        Ok(match self.variables.0.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(Error::Undefined(format!("no variable '{name}' for this component"))),
        })
    }
}
