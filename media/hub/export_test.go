package hub

// The synthetic media of the hub's own tests, exported to its external
// tests (package hub_test: the fan-out benchmark and the packet fuzzer).
var (
	SynthVideoSeq  = synthVideoSeq
	SynthAudioSeq  = synthAudioSeq
	SynthFrame     = synthFrame
	NewSilentHub   = newSilentHub
	NewSynthStream = newSynthStream
	Feed           = feed
)
