package record

import (
	"encoding/binary"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// The flags of the tfhd and trun boxes, and of a sample (ISO/IEC
// 14496-12 8.8.7, 8.8.8).
const (
	trunDataOffset  = 0x000001
	trunDuration    = 0x000100
	trunSize        = 0x000200
	trunSampleFlags = 0x000400
	trunCTO         = 0x000800
	tfhdBaseIsMoof  = 0x020000
	sampleNonSync   = 1 << 16
)

// The sizes of the boxes appendFragment writes, but for their samples.
const (
	boxHeader       = 8
	mfhdSize        = boxHeader + 8
	tfhdSize        = boxHeader + 8
	tfdtSize        = boxHeader + 12
	trunFixedSize   = boxHeader + 12
	maxFragmentSize = 1<<32 - 1
)

// appendFragment appends p as a moof and an mdat box to dst, the bytes
// fmp4.Part.Marshal writes, without its reflection (which cost the
// recorder as much as writing the files): the same boxes, versions and
// flags, the samples' payloads copied once. It returns dst unchanged and
// false when the fragment would not fit 32-bit box sizes.
func appendFragment(dst []byte, p *fmp4.Part) ([]byte, bool) {
	var flagsOf [2]uint32 // each track's trun flags (a fragment has one or two)
	trackFlags := flagsOf[:0]
	moofSize := boxHeader + mfhdSize
	dataSize := 0
	for _, t := range p.Tracks {
		flags := trunFlagsOf(t)
		trackFlags = append(trackFlags, flags)
		moofSize += boxHeader + tfhdSize + tfdtSize + trunFixedSize + len(t.Samples)*trunEntrySize(flags)
		for _, s := range t.Samples {
			dataSize += len(s.Payload)
		}
	}
	if moofSize+boxHeader+dataSize > maxFragmentSize {
		return dst, false
	}
	dst = box(dst, moofSize, "moof")
	dst = box(dst, mfhdSize, "mfhd")
	dst = binary.BigEndian.AppendUint32(dst, 0) // version 0, flags 0
	dst = binary.BigEndian.AppendUint32(dst, p.SequenceNumber)
	dataOffset := moofSize + boxHeader // from the moof's start to the mdat's data
	for i, t := range p.Tracks {
		flags := trackFlags[i]
		trunSize := trunFixedSize + len(t.Samples)*trunEntrySize(flags)
		dst = box(dst, boxHeader+tfhdSize+tfdtSize+trunSize, "traf")
		dst = box(dst, tfhdSize, "tfhd")
		dst = binary.BigEndian.AppendUint32(dst, tfhdBaseIsMoof) // version 0
		dst = binary.BigEndian.AppendUint32(dst, uint32(t.ID))
		dst = box(dst, tfdtSize, "tfdt")
		dst = binary.BigEndian.AppendUint32(dst, 1<<24) // version 1, flags 0
		dst = binary.BigEndian.AppendUint64(dst, t.BaseTime)
		dst = box(dst, trunSize, "trun")
		dst = binary.BigEndian.AppendUint32(dst, 1<<24|flags) // version 1
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(t.Samples)))
		dst = binary.BigEndian.AppendUint32(dst, uint32(int32(dataOffset)))
		for _, s := range t.Samples {
			dst = binary.BigEndian.AppendUint32(dst, s.Duration)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(s.Payload)))
			if flags&trunSampleFlags != 0 {
				var f uint32
				if s.IsNonSyncSample {
					f = sampleNonSync
				}
				dst = binary.BigEndian.AppendUint32(dst, f)
			}
			if flags&trunCTO != 0 {
				dst = binary.BigEndian.AppendUint32(dst, uint32(s.PTSOffset))
			}
			dataOffset += len(s.Payload)
		}
	}
	dst = box(dst, boxHeader+dataSize, "mdat")
	for _, t := range p.Tracks {
		for _, s := range t.Samples {
			dst = append(dst, s.Payload...)
		}
	}
	return dst, true
}

// trunFlagsOf returns the trun flags of a track fragment: sample flags
// when a sample is not a sync sample, composition offsets when one has
// any, as fmp4.Part.Marshal sets them.
func trunFlagsOf(t *fmp4.PartTrack) uint32 {
	flags := uint32(trunDataOffset | trunDuration | trunSize)
	for _, s := range t.Samples {
		if s.IsNonSyncSample {
			flags |= trunSampleFlags
		}
		if s.PTSOffset != 0 {
			flags |= trunCTO
		}
	}
	return flags
}

// trunEntrySize is the size of one sample's entry in a trun with flags.
func trunEntrySize(flags uint32) int {
	n := 8 // duration, size
	if flags&trunSampleFlags != 0 {
		n += 4
	}
	if flags&trunCTO != 0 {
		n += 4
	}
	return n
}

// box appends a box header.
func box(dst []byte, size int, typ string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	return append(dst, typ...)
}
