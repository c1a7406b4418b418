"""Between the adapters and the job core: job statuses and final messages on their way
to the chats (the courier and its outbox), and command outcomes shown the same way on
every platform. Adapters only say how their platform sends (`Sender`, `Surface`)."""
