package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mofang-live/mofang/media/record"
	"github.com/mofang-live/mofang/rpc"
	"github.com/mofang-live/mofang/rpc/urlsign"
	"github.com/mofang-live/mofang/store"
)

// The recorder tells the API how far recordings in progress have got
// (rpc.RecordProgress, asked of the RecordFiles it is given).
var _ rpc.RecordProgress = (*record.Recorder)(nil)

// recordRows keeps a row per recording in the store: the media engine's
// record.Sink.
type recordRows struct {
	store *store.Store
	log   *slog.Logger
	hooks *hooks // record.done; nil: no webhooks
}

func (r recordRows) Started(ctx context.Context, info record.Info) (int64, error) {
	room, err := r.store.RoomByName(ctx, info.Stream)
	if err != nil {
		return 0, err
	}
	return r.store.AddRecord(ctx, store.NewRecord{
		RoomID: room.ID, Stream: info.Stream, Path: info.Path, VideoCodec: info.VideoCodec, AudioCodec: info.AudioCodec,
		Width: info.Width, Height: info.Height, Start: info.Start,
	})
}

func (r recordRows) Ended(ctx context.Context, id int64, info record.Info) {
	status := store.RecordComplete
	if info.Status == record.StatusFailed {
		status = store.RecordFailed
	}
	err := r.store.EndRecord(ctx, id, store.RecordEnd{
		Status: status, Error: info.Error, End: info.End, DurationMS: info.Duration.Milliseconds(), Size: info.Size,
		VideoCodec: info.VideoCodec, AudioCodec: info.AudioCodec, Width: info.Width, Height: info.Height,
	})
	if err != nil {
		r.log.Error("recording row", "record", id, "err", err)
	}
	r.hooks.recordDone(ctx, id, info)
}

// interruptedReason is the error of a recording the server stopped in
// the middle of (killed, a power cut).
const interruptedReason = "the server stopped while recording"

// repairRecords finishes the recordings the last run left "recording"
// (it was killed): their files are repaired (record.Repair: torn bytes
// cut, the playlist ended) and their rows get what is on disk, duration
// and size, as interrupted; one with nothing playable left, or with no
// recordings folder to look in (dir ""), is marked failed. It runs at
// start, before anything records.
func repairRecords(ctx context.Context, st *store.Store, dir string, log *slog.Logger) error {
	rs, err := st.UnfinishedRecords(ctx)
	if err != nil {
		return err
	}
	var interrupted, failed int
	for _, r := range rs {
		end := store.RecordEnd{Status: store.RecordFailed, Error: interruptedReason, End: r.Start}
		if dir != "" {
			info, err := record.Repair(dir, r.Path)
			if err != nil {
				log.Warn("a recording left unfinished by the last run cannot be repaired", "record", r.ID, "err", err)
			}
			end.DurationMS, end.Size = info.Duration.Milliseconds(), info.Size
			if !info.End.IsZero() {
				end.End = info.End
			}
			if err == nil && info.Status == record.StatusDone {
				end.Status = store.RecordInterrupted
			}
		}
		if err := st.EndRecord(ctx, r.ID, end); err != nil {
			return err
		}
		if end.Status == store.RecordInterrupted {
			interrupted++
			log.Info("recording left unfinished by the last run repaired", "record", r.ID,
				"duration", time.Duration(end.DurationMS)*time.Millisecond, "bytes", end.Size)
		} else {
			failed++
		}
	}
	if len(rs) > 0 {
		log.Info("recordings left unfinished by the last run", "repaired", interrupted, "failed", failed)
	}
	return nil
}

// recordsOn tells the engine whether a stream's room records its lives.
// Calls' and co-hosts' streams belong to no room and are never recorded.
func recordsOn(st *store.Store, log *slog.Logger) func(string) bool {
	return func(stream string) bool {
		if rpc.IsPrivateStream(stream) {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		room, err := st.RoomByName(ctx, stream)
		if err != nil {
			log.Warn("recording switch of an unknown room: not recording", "stream", stream, "err", err)
			return false
		}
		return room.Record
	}
}

// recordLookup admits a replay request carrying the recording's play sign
// (from Live.record.list/read, which check the room's access rules) of
// its room's current password generation, and returns where the
// recording is. A request without a valid sign learns nothing, not even
// whether the recording exists.
func recordLookup(st *store.Store, signer *urlsign.Signer) record.Lookup {
	return func(r *http.Request, id int64) (string, error) {
		sign := r.URL.Query().Get("sign")
		rec, err := st.RecordByID(r.Context(), id)
		if errors.Is(err, store.ErrNotFound) {
			if signer.Check(urlsign.Play, rpc.RecordSignName(id), sign) != nil {
				return "", record.ErrForbidden
			}
			return "", record.ErrNotFound
		}
		if err != nil {
			return "", err
		}
		room, err := st.RoomByID(r.Context(), rec.RoomID)
		if errors.Is(err, store.ErrNotFound) {
			return "", record.ErrForbidden
		}
		if err != nil {
			return "", err
		}
		if err := signer.CheckGen(urlsign.Play, rpc.RecordSignName(id), room.PasswordGen, sign); err != nil {
			return "", record.ErrForbidden
		}
		return rec.Path, nil
	}
}

// retention deletes recordings older than days or beyond maxBytes in all,
// oldest first, every hour until ctx ends.
func retention(ctx context.Context, st *store.Store, rec *record.Recorder, days int, maxBytes int64, log *slog.Logger) {
	if days <= 0 && maxBytes <= 0 {
		return
	}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		var older time.Time
		if days > 0 {
			older = time.Now().Add(-time.Duration(days) * 24 * time.Hour)
		}
		expired, err := st.ExpiredRecords(ctx, older, maxBytes)
		if err != nil {
			log.Error("retention", "err", err)
		}
		for _, r := range expired {
			if err := st.DeleteRecord(ctx, r.ID); err != nil {
				log.Error("retention: deleting record", "record", r.ID, "err", err)
				continue
			}
			if err := rec.Remove(r.Path); err != nil {
				log.Error("retention: removing files", "record", r.ID, "err", err)
			}
			log.Info("retention: recording deleted", "record", r.ID, "started", r.Start, "bytes", r.Size)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
