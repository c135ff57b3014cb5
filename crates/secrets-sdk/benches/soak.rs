//! Memory under load (issue 15 part 3): being built.

fn main() {
    eprintln!("soak bench: not built yet");
}
