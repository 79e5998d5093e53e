package media

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os/exec"
	"strings"
	"time"
)

// FFmpeg runs Debian's ffmpeg for the conversions pure Go cannot do:
// voice notes between AAC and Opus, and videos to H.264. A nil *FFmpeg is
// "not installed": every method then returns ErrNoFFmpeg.
//
// Its input comes from anyone who writes to the owner, so every run names
// the input's demuxer (never guessed: a file claiming to be a voice note
// could be a playlist pointing elsewhere) and allows only the file
// protocol.
type FFmpeg struct {
	path    string
	version string
}

// ErrNoFFmpeg means ffmpeg is not installed (or lacks an encoder waxmpp
// needs).
var ErrNoFFmpeg = errors.New("media: ffmpeg is not installed")

// encoders waxmpp uses; Debian's ffmpeg has them all.
var encoders = []string{"libopus", "aac", "libx264", "mjpeg"}

// FindFFmpeg looks for ffmpeg on PATH and checks it can do what waxmpp
// asks. Call it once, at start-up; an error says what is missing (log it
// once: the bridge works without ffmpeg).
func FindFFmpeg(ctx context.Context) (*FFmpeg, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, fmt.Errorf("%w (conversions of voice notes and videos are off)", ErrNoFFmpeg)
	}
	f := &FFmpeg{path: p}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := f.output(ctx, "-version")
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not run: %w", ErrNoFFmpeg, p, err)
	}
	f.version, _, _ = strings.Cut(out, "\n")
	out, err = f.output(ctx, "-encoders")
	if err != nil {
		return nil, fmt.Errorf("%w: %s -encoders: %w", ErrNoFFmpeg, p, err)
	}
	for _, e := range encoders {
		if !strings.Contains(out, " "+e+" ") {
			return nil, fmt.Errorf("%w: %s has no %s encoder", ErrNoFFmpeg, p, e)
		}
	}
	return f, nil
}

// String is ffmpeg's version line, or "not installed".
func (f *FFmpeg) String() string {
	if f == nil {
		return "not installed"
	}
	return f.version
}

func (f *FFmpeg) output(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, f.path, append([]string{"-hide_banner"}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	b, err := cmd.Output()
	return string(b), err
}

// run runs ffmpeg on input in (read with demuxer format) and args; its
// stderr's end goes into the error.
func (f *FFmpeg) run(ctx context.Context, format, in string, args ...string) error {
	if f == nil {
		return ErrNoFFmpeg
	}
	cmd := f.command(ctx, format, in, args...)
	var tail tailBuffer
	cmd.Stderr = &tail
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("media: ffmpeg: %w", ctx.Err())
		}
		return fmt.Errorf("media: ffmpeg: %w: %s", err, tail.String())
	}
	return nil
}

func (f *FFmpeg) command(ctx context.Context, format, in string, args ...string) *exec.Cmd {
	base := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-protocol_whitelist", "file,pipe", "-f", format, "-i", "file:" + in}
	cmd := exec.CommandContext(ctx, f.path, append(base, args...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Demuxers for the inputs waxmpp converts.
const (
	DemuxOgg  = "ogg"
	DemuxMP4  = "mov" // MP4, M4A, 3GP and QuickTime share it
	DemuxWebM = "matroska"
	DemuxGIF  = "gif"
)

// DemuxerFor is the demuxer for a file of MIME type mt, "" when waxmpp
// does not convert that type.
func DemuxerFor(mt string) string {
	switch BaseType(mt) {
	case "audio/ogg":
		return DemuxOgg
	case "audio/aac":
		return "aac" // ADTS
	case "audio/mp4", "video/mp4", "video/quicktime", "video/3gpp":
		return DemuxMP4
	case "video/webm", "video/x-matroska", "audio/webm":
		return DemuxWebM
	case "image/gif":
		return DemuxGIF
	}
	return ""
}

// VoiceNote converts the audio in src (demuxer format) to what WhatsApp
// plays as a voice note: Ogg/Opus, mono, 48 kHz, speech settings.
func (f *FFmpeg) VoiceNote(ctx context.Context, format, src, dst string) error {
	return f.run(ctx, format, src, "-map", "0:a:0", "-vn", "-map_metadata", "-1",
		"-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-application", "voip",
		"-f", "ogg", "file:"+dst)
}

// M4A converts the audio in src to AAC in an .m4a file, which iOS clients
// (Monal, Siskin) play where they do not play Opus.
func (f *FFmpeg) M4A(ctx context.Context, format, src, dst string) error {
	return f.run(ctx, format, src, "-map", "0:a:0", "-vn", "-map_metadata", "-1",
		"-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", "-f", "ipod", "file:"+dst)
}

// MP4 converts the video in src to H.264 in MP4 (what WhatsApp plays),
// at most 1280 pixels on its longest side. gif drops the sound (a GIF has
// none; WhatsApp loops it when the message says gifPlayback).
func (f *FFmpeg) MP4(ctx context.Context, format, src, dst string, gif bool) error {
	args := []string{"-map", "0:v:0", "-map_metadata", "-1",
		"-vf", "scale=w='min(1280,iw)':h='min(1280,ih)':force_original_aspect_ratio=decrease:force_divisible_by=2,format=yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-profile:v", "main"}
	if gif {
		args = append(args, "-an")
	} else {
		args = append(args, "-map", "0:a:0?", "-c:a", "aac", "-b:a", "96k", "-ac", "2")
	}
	args = append(args, "-movflags", "+faststart", "-f", "mp4", "file:"+dst)
	return f.run(ctx, format, src, args...)
}

// Frame writes the first frame of the video in src to dst as a JPEG no
// larger than ThumbSize: a video message's thumbnail.
func (f *FFmpeg) Frame(ctx context.Context, format, src, dst string) error {
	return f.run(ctx, format, src, "-map", "0:v:0", "-frames:v", "1",
		"-vf", fmt.Sprintf("scale=w=%d:h=%d:force_original_aspect_ratio=decrease", ThumbSize, ThumbSize),
		"-c:v", "mjpeg", "-q:v", "6", "-f", "image2", "file:"+dst)
}

// WaveformSize is how many values a WhatsApp voice note's waveform has
// (each 0–100).
const WaveformSize = 64

// Waveform decodes the audio in src and returns its loudness in
// WaveformSize steps, each 0–100, the loudest 100: what WhatsApp draws
// for a voice note. The audio is streamed through at 8 kHz mono; only
// one value per 50 ms is kept (an hour is 72,000 of them).
func (f *FFmpeg) Waveform(ctx context.Context, format, src string) ([]byte, error) {
	if f == nil {
		return nil, ErrNoFFmpeg
	}
	cmd := f.command(ctx, format, src, "-map", "0:a:0", "-vn", "-ac", "1", "-ar", "8000", "-f", "s16le", "pipe:1")
	var tail tailBuffer
	cmd.Stderr = &tail
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("media: ffmpeg: %w", err)
	}
	levels, rerr := loudness(bufio.NewReaderSize(out, 32<<10), 400, 72000)
	if rerr != nil {
		io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("media: ffmpeg: %w: %s", err, tail.String())
	}
	if rerr != nil {
		return nil, rerr
	}
	return waveform(levels), nil
}

// loudness reads 16-bit little-endian samples from r and returns the RMS
// of each window of n samples, at most limit of them (later windows are
// folded into the last).
func loudness(r io.Reader, n, limit int) ([]float64, error) {
	var levels []float64
	var sum float64
	count := 0
	var b [2]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			return nil, err
		}
		s := float64(int16(binary.LittleEndian.Uint16(b[:])))
		sum += s * s
		count++
		if count == n {
			v := math.Sqrt(sum / float64(n))
			if len(levels) < limit {
				levels = append(levels, v)
			} else {
				levels[limit-1] = max(levels[limit-1], v)
			}
			sum, count = 0, 0
		}
	}
	if count > 0 {
		levels = append(levels, math.Sqrt(sum/float64(count)))
	}
	return levels, nil
}

// waveform folds levels into WaveformSize values, 0–100, the loudest 100.
func waveform(levels []float64) []byte {
	out := make([]byte, WaveformSize)
	if len(levels) == 0 {
		return out
	}
	vals := make([]float64, WaveformSize)
	peak := 0.0
	for i := range vals {
		a := i * len(levels) / WaveformSize
		b := max((i+1)*len(levels)/WaveformSize, a+1)
		b = min(b, len(levels))
		if a >= len(levels) {
			a = len(levels) - 1
		}
		var s float64
		for _, v := range levels[a:b] {
			s += v
		}
		vals[i] = s / float64(b-a)
		peak = max(peak, vals[i])
	}
	if peak == 0 {
		return out
	}
	for i, v := range vals {
		out[i] = byte(math.Round(v / peak * 100))
	}
	return out
}

// tailBuffer keeps the last 2 KB written to it (ffmpeg's error lines).
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 2048 {
		t.b = append(t.b[:0], t.b[len(t.b)-2048:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
