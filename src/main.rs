fn main() {
    println!("{}", nsoffload::api::crd_yaml());
}
