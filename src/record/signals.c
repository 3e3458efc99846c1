// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>
#include <time.h>

#include "signals.h"

#define SIG_TIMEOUT SIGALRM
#define SIG_KICK    (SIGRTMIN + 1)

static struct backend *kick_target;
static volatile sig_atomic_t stop_signo, timed_out;
static uint64_t kicks; /* counted in the handler, consumed by the loop: atomics only */
static timer_t timeout_timer, kick_timer;
static int have_timeout, have_kick;
static uint64_t kick_usec, rng;

/* xorshift64*: cheap, seedable, async-signal-safe. */
static uint64_t next_random(void)
{
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        return rng * 2685821657736338717ull;
}

static void arm_kick(void)
{
        /* 50%..150% of the period: kicks land on arbitrary instruction boundaries. */
        uint64_t ns = kick_usec * 500 + next_random() % (kick_usec * 1000 + 1);
        struct itimerspec its = { 0 };

        its.it_value.tv_sec = (time_t)(ns / 1000000000ull);
        its.it_value.tv_nsec = (long)(ns % 1000000000ull);
        timer_settime(kick_timer, 0, &its, NULL); /* async-signal-safe */
}

static void on_signal(int signo)
{
        if (signo == SIG_TIMEOUT) {
                timed_out = 1;
        } else if (signo == SIG_KICK) {
                __atomic_fetch_add(&kicks, 1, __ATOMIC_RELAXED);
                arm_kick();
        } else {
                stop_signo = signo;
        }
        if (kick_target)
                kick_target->ops->kick(kick_target);
}

static int make_timer(timer_t *t, int signo)
{
        struct sigevent sev = { 0 };

        sev.sigev_notify = SIGEV_SIGNAL;
        sev.sigev_signo = signo;
        return timer_create(CLOCK_MONOTONIC, &sev, t) ? -errno : 0;
}

int signals_start(struct backend *b, double timeout_s, uint64_t usec, uint64_t seed)
{
        const int signos[] = { SIGINT, SIGTERM, SIG_TIMEOUT, SIG_KICK };
        struct sigaction sa;
        int err;

        kick_target = b;
        stop_signo = timed_out = 0;
        __atomic_store_n(&kicks, 0, __ATOMIC_RELAXED);
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(signos) / sizeof(signos[0]); i++)
                sigaddset(&sa.sa_mask, signos[i]);
        /* No SA_RESTART: the signal must interrupt KVM_RUN. */
        for (size_t i = 0; i < sizeof(signos) / sizeof(signos[0]); i++)
                if (sigaction(signos[i], &sa, NULL))
                        return -errno;

        if (timeout_s > 0) {
                struct itimerspec its = { 0 };

                err = make_timer(&timeout_timer, SIG_TIMEOUT);
                if (err)
                        return err;
                have_timeout = 1;
                its.it_value.tv_sec = (time_t)timeout_s;
                its.it_value.tv_nsec = (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
                if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
                        its.it_value.tv_nsec = 1;
                if (timer_settime(timeout_timer, 0, &its, NULL))
                        return -errno;
        }
        if (usec) {
                err = make_timer(&kick_timer, SIG_KICK);
                if (err)
                        return err;
                have_kick = 1;
                kick_usec = usec;
                rng = seed * 0x9e3779b97f4a7c15ull + 1;
                arm_kick();
        }
        return 0;
}

void signals_stop(void)
{
        if (have_kick)
                timer_delete(kick_timer);
        if (have_timeout)
                timer_delete(timeout_timer);
        have_kick = have_timeout = 0;
        kick_target = NULL;
        signal(SIG_KICK, SIG_IGN);
        signal(SIG_TIMEOUT, SIG_IGN);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
}

void signals_take(struct sig_events *ev)
{
        /* Called at every exit: an atomic exchange, no signal-mask syscalls. */
        ev->kicks = __atomic_exchange_n(&kicks, 0, __ATOMIC_RELAXED);
        ev->stop_signo = stop_signo;
        ev->timed_out = timed_out;
}

void signals_wait(void)
{
        sigset_t block, old;

        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIG_TIMEOUT);
        sigaddset(&block, SIG_KICK);
        sigprocmask(SIG_BLOCK, &block, &old);
        /* Checked with the signals blocked, so one arriving now is not lost. */
        if (!__atomic_load_n(&kicks, __ATOMIC_RELAXED) && !stop_signo && !timed_out)
                sigsuspend(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
}
