//! A loopback emulation of the Hugging Face Hub.
