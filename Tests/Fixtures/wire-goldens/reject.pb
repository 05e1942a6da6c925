�_[identity "a1" is in use by a live actor: ü 日本語 🚀 é  Ω	new
line "quoted" \back