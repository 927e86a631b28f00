//! Loss curves as SVG polylines: one scale for every curve of a chart, so that two models' losses
//! drawn together can be compared by eye.

/// The steps and losses a chart spans.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub max_step: usize,
    pub lo: f32,
    pub hi: f32,
}

impl Scale {
    /// Spans every point of every curve given.
    pub fn of<'a>(curves: impl IntoIterator<Item = &'a [(usize, f32)]>) -> Self {
        let mut s = Self {
            max_step: 1,
            lo: f32::MAX,
            hi: f32::MIN,
        };
        for &(step, loss) in curves.into_iter().flatten() {
            s.max_step = s.max_step.max(step);
            s.lo = s.lo.min(loss);
            s.hi = s.hi.max(loss);
        }
        s
    }
}

/// `points` of a polyline `w` × `h` (y grows downwards: the lowest loss at the bottom).
pub fn polyline(losses: &[(usize, f32)], scale: Scale, w: f64, h: f64) -> String {
    let span = ((scale.hi - scale.lo) as f64).max(1e-6);
    losses
        .iter()
        .map(|(s, l)| {
            let x = *s as f64 / scale.max_step as f64 * w;
            let y = h - ((*l - scale.lo) as f64 / span) * (h - 4.0) - 2.0;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}
