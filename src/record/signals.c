// SPDX-License-Identifier: MIT
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signals.h"

#define SIG_KICK    (SIGRTMIN + 1)
#define SIG_TIMEOUT SIGNALS_TIMEOUT_SIGNO

/* sigev_value of our timers: a queued signal from outside carries another. */
#define TAG_KICK    0x6b69636b /* "kick" */
#define TAG_TIMEOUT 0x74696d65 /* "time" */

/* Stop signals below SIGRTMIN; SIGRTMIN..SIGRTMAX are added at run time. */
static const int stop_signals[] = {
        SIGHUP,    SIGINT,  SIGQUIT, SIGPIPE,   SIGALRM, SIGTERM, SIGUSR1, SIGUSR2,
        SIGSTKFLT, SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGIO,   SIGPWR,
};

static struct backend *volatile kick_target;
static volatile sig_atomic_t stop_signo, timed_out;
static uint64_t kicks; /* counted in the handler, consumed by the loop: atomics only */
static timer_t timeout_timer, kick_timer;
static volatile sig_atomic_t have_timeout, have_kick;
static uint64_t kick_usec, rng;
static sigset_t handled; /* every signal on_signal serves */

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

static bool from_timer(const siginfo_t *si, int tag)
{
        return si->si_code == SI_TIMER && si->si_value.sival_int == tag;
}

static void on_signal(int signo, siginfo_t *si, void *uctx)
{
        struct backend *b = kick_target;
        int saved = errno;

        (void)uctx;
        if (signo == SIG_TIMEOUT && from_timer(si, TAG_TIMEOUT)) {
                if (have_timeout)
                        timed_out = 1;
        } else if (signo == SIG_KICK && from_timer(si, TAG_KICK)) {
                /*
                 * Not re-armed here but when the loop takes the kick: a period
                 * shorter than this handler's own cost (1 us, on a kernel with
                 * fine-grained timers) would otherwise call it back at once,
                 * forever, and neither the guest nor a stop signal would get on.
                 */
                if (have_kick)
                        __atomic_fetch_add(&kicks, 1, __ATOMIC_RELAXED);
        } else if ((signo == SIGPIPE || signo == SIGXFSZ) && si->si_code == SI_USER &&
                   si->si_pid == getpid()) {
                /* The kernel's answer to one of our own writes: it fails with EPIPE / EFBIG. */
                errno = saved;
                return;
        } else if (stop_signo) {
                /* Asked twice: the first request may be stuck (a write to a full FIFO). */
                signal(signo, SIG_DFL);
                raise(signo);
        } else {
                stop_signo = signo;
        }
        if (b)
                b->ops->kick(b);
        errno = saved;
}

int signals_install(void)
{
        struct sigaction sa;

        sigemptyset(&handled);
        for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
                sigaddset(&handled, stop_signals[i]);
        for (int s = SIGRTMIN; s <= SIGRTMAX; s++)
                sigaddset(&handled, s);

        stop_signo = timed_out = 0;
        __atomic_store_n(&kicks, 0, __ATOMIC_RELAXED);
        memset(&sa, 0, sizeof(sa));
        sa.sa_sigaction = on_signal;
        sa.sa_mask = handled;
        /* No SA_RESTART: the signal must interrupt KVM_RUN. */
        sa.sa_flags = SA_SIGINFO;
        for (int s = 1; s < _NSIG; s++) {
                if (sigismember(&handled, s) != 1 || !sigaction(s, &sa, NULL))
                        continue;
                /*
                 * A host tool may keep a real-time signal for itself (valgrind
                 * takes the last one): hvrec can run without stopping on it,
                 * but not without the signals its own timers use.
                 */
                if (errno != EINVAL || s < SIGRTMIN || s == SIG_KICK || s == SIG_TIMEOUT)
                        return -errno;
                sigdelset(&handled, s);
                sa.sa_mask = handled;
        }
        return 0;
}

void signals_block(sigset_t *old)
{
        pthread_sigmask(SIG_BLOCK, &handled, old);
}

void signals_unblock(const sigset_t *old)
{
        pthread_sigmask(SIG_SETMASK, old, NULL);
}

static int make_timer(timer_t *t, int signo, int tag)
{
        struct sigevent sev = { 0 };

        sev.sigev_notify = SIGEV_SIGNAL;
        sev.sigev_signo = signo;
        sev.sigev_value.sival_int = tag;
        return timer_create(CLOCK_MONOTONIC, &sev, t) ? -errno : 0;
}

int signals_deadline_create(timer_t *t)
{
        return make_timer(t, SIG_TIMEOUT, TAG_TIMEOUT);
}

int signals_deadline_arm(timer_t t, double seconds)
{
        struct itimerspec its = { 0 };

        its.it_value.tv_sec = (time_t)seconds;
        its.it_value.tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9);
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
                its.it_value.tv_nsec = 1; /* 0 would disarm it */
        return timer_settime(t, 0, &its, NULL) ? -errno : 0;
}

bool signals_is_deadline(const siginfo_t *si)
{
        return from_timer(si, TAG_TIMEOUT);
}

int signals_start(struct backend *b, double timeout_s, uint64_t usec, uint64_t seed)
{
        int err;

        kick_target = b;
        /* A process may run one guest after another (hvreplay reduce): each has its own deadline.
         */
        timed_out = 0;
        __atomic_store_n(&kicks, 0, __ATOMIC_RELAXED);
        if (stop_signo)
                b->ops->kick(b); /* a signal that came during the set-up */
        if (timeout_s > 0) {
                err = signals_deadline_create(&timeout_timer);
                if (err)
                        return err;
                have_timeout = 1;
                err = signals_deadline_arm(timeout_timer, timeout_s);
                if (err)
                        return err;
        }
        if (usec) {
                kick_usec = usec;
                rng = seed * 0x9e3779b97f4a7c15ull + 1;
                err = make_timer(&kick_timer, SIG_KICK, TAG_KICK);
                if (err)
                        return err;
                have_kick = 1;
                arm_kick();
        }
        return 0;
}

void signals_stop(void)
{
        sigset_t old;

        /* Blocked, so no handler is half-way through the timers or the backend. */
        signals_block(&old);
        if (have_kick)
                timer_delete(kick_timer);
        if (have_timeout)
                timer_delete(timeout_timer);
        have_kick = have_timeout = 0;
        kick_target = NULL;
        signals_unblock(&old);
}

int signals_stop_signo(void)
{
        return stop_signo;
}

bool signals_must_stop(void)
{
        return stop_signo || timed_out;
}

void signals_take(struct sig_events *ev)
{
        /*
         * Called at every exit: no signal-mask syscalls, and no locked exchange
         * either when there is nothing to take (nearly always).  A kick counted
         * just after the load is taken at the next exit, as one counted just
         * after the exchange would be.
         */
        ev->kicks = __atomic_load_n(&kicks, __ATOMIC_RELAXED)
                            ? __atomic_exchange_n(&kicks, 0, __ATOMIC_RELAXED)
                            : 0;
        /* The timer has expired and waits for this: no handler touches rng meanwhile. */
        if (ev->kicks && have_kick)
                arm_kick();
        ev->stop_signo = stop_signo;
        ev->timed_out = timed_out;
}

void signals_wait(void)
{
        sigset_t old;

        signals_block(&old);
        /* Checked with the signals blocked, so one arriving now is not lost. */
        if (!__atomic_load_n(&kicks, __ATOMIC_RELAXED) && !stop_signo && !timed_out)
                sigsuspend(&old);
        signals_unblock(&old);
}
