package chatclient_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/chatd/chatd/chatclient"
)

// Join the chat and see who is online.
func ExampleConnect() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{chatdAddr}}, "ada")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, u := range c.Welcome().GetOnlineUsers() {
		fmt.Println("online:", u.GetUsername())
	}
	// Output:
	// online: ada
}

// Send a message to #general and read events until it comes back: the
// server echoes every message to its sender too.
func ExampleClient_SendText() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{chatdAddr}}, "grace")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.SendText("general", "hello", "m1"); err != nil {
		log.Fatal(err)
	}
	for {
		ev, err := c.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if m := ev.GetMessage(); m != nil && m.GetClientId() == "m1" {
			fmt.Printf("#%s %s: %s\n", m.GetChannel(), m.GetSender(), m.GetText())
			break
		}
	}
	// Output:
	// #general grace: hello
}

// Join as a second device of a user already in the chat: the first
// device's key shows chatd that the phone is the same person as the
// laptop, not someone taking the name. What one device sends, the other
// gets too.
func ExampleClient_DeviceKey() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	laptop, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{chatdAddr}}, "lin")
	if err != nil {
		log.Fatal(err)
	}
	defer laptop.Close()

	phone, err := chatclient.Connect(ctx, chatclient.Config{Servers: []string{chatdAddr}, DeviceKey: laptop.DeviceKey()}, "lin")
	if err != nil {
		log.Fatal(err)
	}
	defer phone.Close()
	fmt.Println("the phone joined as", phone.Welcome().GetYou().GetUsername())

	if err := phone.SendText("general", "on my way", "p1"); err != nil {
		log.Fatal(err)
	}
	for {
		ev, err := laptop.Recv()
		if err != nil {
			log.Fatal(err)
		}
		if m := ev.GetMessage(); m != nil && m.GetClientId() == "p1" {
			fmt.Printf("the laptop got #%s %s: %s\n", m.GetChannel(), m.GetSender(), m.GetText())
			break
		}
	}
	// Output:
	// the phone joined as lin
	// the laptop got #general lin: on my way
}
