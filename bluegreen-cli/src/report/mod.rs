//! `bluegreen report`: one deployment drawn from its journal entries.
//!
//! The journal is read ([`read`]) into a [`Timeline`] ([`model`]: phases as intervals, each
//! slot's weight over time, [`marker`]s, the outcome), placed on a time axis ([`scale`]), and drawn
//! as an inline SVG ([`svg`]) inside a self-contained HTML page ([`html`]), or summed up in a few
//! lines of text ([`text`]). Everything taken from the journal is escaped ([`escape`]).

pub mod escape;
pub mod html;
pub mod marker;
pub mod model;
pub mod read;
pub mod scale;
pub mod svg;
pub mod text;

#[cfg(test)]
mod tests;

pub use model::Timeline;
