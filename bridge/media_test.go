package bridge_test

import (
	"context"
	"errors"
	"time"

	"waxmpp/bridge"
)

var errNoMedia = errors.New("no media")

func (f *fakeWA) Download(context.Context, *bridge.Media, string) (int64, error) {
	return 0, errNoMedia
}

func (f *fakeWA) SendMedia(context.Context, bridge.ChatID, *bridge.OutMedia, bridge.SendOptions) (bridge.MsgRef, time.Time, error) {
	return bridge.MsgRef{}, time.Time{}, errNoMedia
}

func (f *fakeWA) RequestMediaRetry(context.Context, bridge.MsgRef, *bridge.Media) error {
	return errNoMedia
}
