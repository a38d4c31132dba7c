mod decoder;
mod json_text;
mod wire;
