package whatsapp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waMmsRetry"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"waxmpp/bridge"
)

// Media both ways. Downloads and uploads stream through temporary files
// in TempDir (whatsmeow decrypts a download in place in its file, and
// encrypts an upload into a second file before sending it): nothing is
// read whole into memory. whatsmeow's Download and Upload, which hold the
// whole file in memory, are never used, nor UploadReader's default
// temporary file (in /tmp, which may be RAM on a Pi).

var mediaTypes = map[string]whatsmeow.MediaType{
	"image": whatsmeow.MediaImage, "video": whatsmeow.MediaVideo, "audio": whatsmeow.MediaAudio,
	"document": whatsmeow.MediaDocument, "sticker": whatsmeow.MediaImage,
}

// settingRetryPfx + chat/id keeps the media handle of a message whose
// media the phone was asked to upload again: its answer is encrypted with
// the media key, and may come after a restart.
const settingRetryPfx = "whatsapp.media_retry/"

// Download implements bridge.WhatsApp: the attachment is downloaded and
// decrypted into path (with whatsmeow's streaming download to a file).
// WhatsApp's 403, 404 and 410 answers are bridge.ErrMediaExpired.
func (a *Adapter) Download(ctx context.Context, m *bridge.Media, path string) (int64, error) {
	c, _, err := a.linked()
	if err != nil {
		return 0, err
	}
	var h mediaHandle
	if err := json.Unmarshal([]byte(m.Handle), &h); err != nil {
		return 0, fmt.Errorf("whatsapp: download: bad media handle: %w", err)
	}
	mt, ok := mediaTypes[h.Type]
	if !ok || !strings.HasPrefix(h.DirectPath, "/") {
		return 0, fmt.Errorf("whatsapp: download: bad media handle")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, fmt.Errorf("whatsapp: download: %w", err)
	}
	defer f.Close()
	err = c.DownloadMediaWithPathToFile(ctx, h.DirectPath, h.EncSHA256, h.SHA256, h.MediaKey, mt, "", false, f)
	if errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith403) || errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith404) ||
		errors.Is(err, whatsmeow.ErrMediaDownloadFailedWith410) {
		return 0, fmt.Errorf("whatsapp: download: %w (%w)", bridge.ErrMediaExpired, err)
	}
	if err != nil {
		return 0, fmt.Errorf("whatsapp: download: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("whatsapp: download: %w", err)
	}
	return st.Size(), f.Close()
}

// uploadType is the media type an upload is encrypted for.
func uploadType(k bridge.MsgKind) (whatsmeow.MediaType, error) {
	switch k {
	case bridge.Image, bridge.Sticker:
		return whatsmeow.MediaImage, nil
	case bridge.Video:
		return whatsmeow.MediaVideo, nil
	case bridge.Audio, bridge.Voice:
		return whatsmeow.MediaAudio, nil
	case bridge.Document:
		return whatsmeow.MediaDocument, nil
	}
	return "", fmt.Errorf("whatsapp: kind %d is not media", k)
}

// SendMedia implements bridge.WhatsApp: m.Path is encrypted into a
// temporary file and uploaded by whatsmeow's UploadReader, then the
// message goes out with the fields the phone needs (see buildMedia).
func (a *Adapter) SendMedia(ctx context.Context, chat bridge.ChatID, m *bridge.OutMedia, opts bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	c, _, err := a.linked()
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, err
	}
	mt, err := uploadType(m.Kind)
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, err
	}
	in, err := os.Open(m.Path)
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, fmt.Errorf("whatsapp: upload: %w", err)
	}
	defer in.Close()
	enc, err := a.tempFile("media-upload") // swept at start-up with the other transfers' files
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, fmt.Errorf("whatsapp: upload: %w", err)
	}
	defer func() {
		enc.Close()
		os.Remove(enc.Name())
	}()
	up, err := c.UploadReader(ctx, in, enc, mt)
	if err != nil {
		return bridge.MsgRef{}, time.Time{}, fmt.Errorf("whatsapp: upload: %w", err)
	}
	return a.send(ctx, chat, buildMedia(m, up, opts, a.self(), a.now()), opts.ID)
}

// buildMedia is the message for SendMedia: the upload's keys and hashes,
// and the fields the phone shows before (thumbnail, size, duration,
// waveform) and after downloading.
func buildMedia(m *bridge.OutMedia, up whatsmeow.UploadResponse, opts bridge.SendOptions, self types.JID, now time.Time) *waE2E.Message {
	ci := contextInfo(opts, self)
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return proto.String(s)
	}
	dim := func(n int) *uint32 {
		if n <= 0 {
			return nil
		}
		return proto.Uint32(uint32(n))
	}
	secs := func(d time.Duration) *uint32 {
		if d <= 0 {
			return nil
		}
		// WhatsApp shows whole seconds; a 0.4 s clip is 1 s, not 0.
		return proto.Uint32(uint32((d + time.Second - 1) / time.Second))
	}
	var thumb []byte
	if len(m.Thumbnail) > 0 {
		thumb = m.Thumbnail
	}
	ts := proto.Int64(now.Unix())
	switch m.Kind {
	case bridge.Image:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: str(up.URL), DirectPath: str(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: str(m.MimeType), Width: dim(m.Width), Height: dim(m.Height), JPEGThumbnail: thumb,
			Caption: str(m.Caption), ContextInfo: ci,
		}}
	case bridge.Sticker:
		return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
			URL: str(up.URL), DirectPath: str(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: str(m.MimeType), Width: dim(m.Width), Height: dim(m.Height), ContextInfo: ci,
		}}
	case bridge.Video:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: str(up.URL), DirectPath: str(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: str(m.MimeType), Width: dim(m.Width), Height: dim(m.Height), JPEGThumbnail: thumb,
			Seconds: secs(m.Duration), GifPlayback: proto.Bool(m.GIF), Caption: str(m.Caption), ContextInfo: ci,
		}}
	case bridge.Audio, bridge.Voice:
		am := &waE2E.AudioMessage{
			URL: str(up.URL), DirectPath: str(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: str(m.MimeType), Seconds: secs(m.Duration), PTT: proto.Bool(m.Kind == bridge.Voice), ContextInfo: ci,
		}
		if m.Kind == bridge.Voice && len(m.Waveform) > 0 {
			am.Waveform = m.Waveform
		}
		return &waE2E.Message{AudioMessage: am}
	default: // bridge.Document
		dm := &waE2E.DocumentMessage{
			URL: str(up.URL), DirectPath: str(up.DirectPath), MediaKey: up.MediaKey, MediaKeyTimestamp: ts,
			FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: proto.Uint64(up.FileLength),
			Mimetype: str(m.MimeType), FileName: str(m.FileName), Title: str(m.FileName), JPEGThumbnail: thumb,
			Caption: str(m.Caption), ContextInfo: ci,
		}
		if m.Caption != "" {
			// A document with a caption travels wrapped, as the phone
			// sends it.
			return &waE2E.Message{DocumentWithCaptionMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{DocumentMessage: dm}}}
		}
		return &waE2E.Message{DocumentMessage: dm}
	}
}

// RequestMediaRetry implements bridge.WhatsApp: whatsmeow's media retry
// receipt asks the phone to upload the attachment again. The handle is
// kept (settingRetryPfx) to decrypt the answer, which may come after a
// restart.
func (a *Adapter) RequestMediaRetry(ctx context.Context, ref bridge.MsgRef, m *bridge.Media) error {
	c, self, err := a.linked()
	if err != nil {
		return err
	}
	var h mediaHandle
	if err := json.Unmarshal([]byte(m.Handle), &h); err != nil || len(h.MediaKey) == 0 {
		return fmt.Errorf("whatsapp: media retry: bad media handle")
	}
	info, err := retryInfo(ref, self)
	if err != nil {
		return err
	}
	if err := a.settings.PutBlob(retryKey(info.Chat, info.ID), []byte(m.Handle)); err != nil {
		return fmt.Errorf("whatsapp: media retry: %w", err)
	}
	if err := c.SendMediaRetryReceipt(ctx, &info, h.MediaKey); err != nil {
		return fmt.Errorf("whatsapp: media retry: %w", err)
	}
	return nil
}

func retryKey(chat types.JID, id types.MessageID) string {
	return settingRetryPfx + chat.ToNonAD().String() + "/" + string(id)
}

// retryInfo is the message info a media retry receipt names.
func retryInfo(ref bridge.MsgRef, self types.JID) (types.MessageInfo, error) {
	chat, err := parseJID(string(ref.Chat))
	if err != nil {
		return types.MessageInfo{}, err
	}
	info := types.MessageInfo{ID: types.MessageID(ref.ID), MessageSource: types.MessageSource{
		Chat: chat, IsFromMe: ref.FromMe, IsGroup: chat.Server == types.GroupServer}}
	if ref.FromMe {
		info.Sender = self
	} else if ref.Sender != "" {
		if info.Sender, err = parseJID(string(ref.Sender)); err != nil {
			return types.MessageInfo{}, err
		}
	}
	return info, nil
}

// mediaRetry converts the phone's answer to a media retry receipt: the
// handle kept for it, with the new direct path, or the reason it failed.
// An answer for a request this device does not know is dropped.
func (a *Adapter) mediaRetry(e *events.MediaRetry) []bridge.Event {
	key := retryKey(e.ChatID, e.MessageID)
	b, ok, err := a.settings.Blob(key)
	if err != nil || !ok || len(b) == 0 {
		a.log.Debug("media retry answer for an unknown request", "id", e.MessageID, "err", err)
		return nil
	}
	var h mediaHandle
	if err := json.Unmarshal(b, &h); err != nil {
		a.log.Warn("media retry: stored handle unreadable", "err", err)
		return nil
	}
	ref := bridge.MsgRef{Chat: chatID(e.ChatID), ID: string(e.MessageID), FromMe: e.FromMe}
	switch {
	case e.FromMe:
		ref.Sender = userID(a.self())
	case !e.SenderID.IsEmpty():
		ref.Sender = userID(e.SenderID)
	default:
		ref.Sender = bridge.UserID(chatID(e.ChatID))
	}
	out := &bridge.MediaRetry{Ref: ref}
	notif, err := whatsmeow.DecryptMediaRetryNotification(e, h.MediaKey)
	switch {
	case errors.Is(err, whatsmeow.ErrMediaNotAvailableOnPhone):
		out.Err = "no longer on the phone"
	case err != nil:
		out.Err = err.Error()
	case notif.GetResult() != waMmsRetry.MediaRetryNotification_SUCCESS:
		out.Err = strings.ToLower(strings.ReplaceAll(notif.GetResult().String(), "_", " "))
		if notif.GetResult() == waMmsRetry.MediaRetryNotification_NOT_FOUND {
			out.Err = "no longer on the phone"
		}
	case !strings.HasPrefix(notif.GetDirectPath(), "/"):
		out.Err = "the phone's answer has no file path"
	default:
		h.DirectPath = notif.GetDirectPath()
		nb, _ := json.Marshal(h)
		out.Media = &bridge.Media{Handle: string(nb), Size: int64(h.Length)}
	}
	if err := a.settings.PutBlob(key, nil); err != nil {
		a.log.Warn("media retry: forget request", "err", err)
	}
	return []bridge.Event{out}
}
