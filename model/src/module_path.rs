//! Where a parameter sits in the module tree. Loading, export, the optimizer's decay groups,
//! trainability and saved runs all key parameters by it; burn's visitors and mappers only say
//! when a module is entered or left, so [`Tracked`] keeps the path once for all of them.

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// The modules entered on the way to a parameter: burn's field names (the parameter's own
/// last) and the modules' container types (`Struct:Linear`, `Struct:LayerNorm`, …).
#[derive(Default)]
pub(crate) struct ModulePath {
    names: Vec<String>,
    containers: Vec<String>,
}

impl ModulePath {
    /// The names `.`-joined: `transformer.h.0.attn.c_attn.weight`.
    pub(crate) fn joined(&self) -> String {
        self.names.join(".")
    }

    /// The parameter's own field name (`weight`, `bias`, `gamma`, …).
    pub(crate) fn name(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }

    /// The container types, outermost first; the last is the module holding the parameter.
    pub(crate) fn containers(&self) -> &[String] {
        &self.containers
    }
}

/// A visitor told where each float parameter is.
pub(crate) trait VisitAt {
    fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, param: &Param<Tensor<D>>);
}

/// A mapper told where each float parameter is.
pub(crate) trait MapAt {
    fn map_float_at<const D: usize>(
        &mut self,
        at: &ModulePath,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>>;
}

/// Runs a [`VisitAt`] or [`MapAt`] as burn's visitor or mapper, keeping the path.
pub(crate) struct Tracked<T> {
    pub(crate) inner: T,
    at: ModulePath,
}

impl<T> Tracked<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            at: ModulePath::default(),
        }
    }

    fn enter(&mut self, name: &str, container_type: &str) {
        self.at.names.push(name.to_string());
        self.at.containers.push(container_type.to_string());
    }

    fn exit(&mut self) {
        self.at.names.pop();
        self.at.containers.pop();
    }
}

impl<T: VisitAt> ModuleVisitor for Tracked<T> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.enter(name, container_type);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit_float_at(&self.at, param);
    }
}

impl<T: MapAt> ModuleMapper for Tracked<T> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.enter(name, container_type);
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map_float_at(&self.at, param)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};

    use super::*;

    #[derive(Module, Debug)]
    struct Block {
        ln: LayerNorm,
        proj: Linear,
    }

    #[derive(Default)]
    struct Seen(Vec<(String, String, String)>);

    impl VisitAt for Seen {
        fn visit_float_at<const D: usize>(&mut self, at: &ModulePath, _: &Param<Tensor<D>>) {
            self.0.push((
                at.joined(),
                at.name().unwrap_or_default().to_string(),
                at.containers().last().cloned().unwrap_or_default(),
            ));
        }
    }

    #[test]
    fn each_parameter_is_told_its_path_name_and_container() {
        let device = crate::device::cpu();
        let block = Block {
            ln: LayerNormConfig::new(4).init(&device),
            proj: LinearConfig::new(4, 2).init(&device),
        };
        let mut seen = Tracked::new(Seen::default());
        block.visit(&mut seen);
        let seen: Vec<(&str, &str, &str)> = seen
            .inner
            .0
            .iter()
            .map(|(p, n, c)| (p.as_str(), n.as_str(), c.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("ln.gamma", "gamma", "Struct:LayerNorm"),
                ("ln.beta", "beta", "Struct:LayerNorm"),
                ("proj.weight", "weight", "Struct:Linear"),
                ("proj.bias", "bias", "Struct:Linear"),
            ]
        );
    }
}
