//! One architecture per file.
pub mod bert;
pub mod distilbert;
pub mod gpt2;
