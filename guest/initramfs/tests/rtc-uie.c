/* Three update events from /dev/rtc0 (RTC_UIE_ON; Linux's rtc core serves it with
 * the clock's alarm: an alarm interrupt on IRQ 8, or none when the alarm's second has
 * passed by the time it is set, which the core then serves itself), each awaited at most
 * 5 s. Prints "RTC-CHECK uie=3" or says what failed. For guest/initramfs/tests/rtc. */
#include <fcntl.h>
#include <linux/rtc.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <unistd.h>

int main(void)
{
    int fd = open("/dev/rtc0", O_RDONLY);
    if (fd < 0 || ioctl(fd, RTC_UIE_ON, 0) < 0) {
        perror("RTC-CHECK uie=error /dev/rtc0");
        return 1;
    }
    for (int i = 0; i < 3; i++) {
        fd_set ready;
        struct timeval timeout = { .tv_sec = 5 };
        unsigned long event;
        FD_ZERO(&ready);
        FD_SET(fd, &ready);
        if (select(fd + 1, &ready, NULL, NULL, &timeout) != 1) {
            printf("RTC-CHECK uie=timeout-after-%d\n", i);
            return 1;
        }
        if (read(fd, &event, sizeof event) != sizeof event) {
            perror("RTC-CHECK uie=error read");
            return 1;
        }
    }
    ioctl(fd, RTC_UIE_OFF, 0);
    printf("RTC-CHECK uie=3\n");
    return 0;
}
